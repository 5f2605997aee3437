package drilldown

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"connectrpc.com/connect"

	adhocv1 "github.com/grafana/pyroscope/api/gen/proto/go/adhocprofiles/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/adhocprofiles/v1/adhocprofilesv1connect"
	capabilitiesv1 "github.com/grafana/pyroscope/api/gen/proto/go/capabilities/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/capabilities/v1/capabilitiesv1connect"
	settingsv1 "github.com/grafana/pyroscope/api/gen/proto/go/settings/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/settings/v1/settingsv1connect"
	statusv1 "github.com/grafana/pyroscope/api/gen/proto/go/status/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/status/v1/statusv1connect"
	versionv1 "github.com/grafana/pyroscope/api/gen/proto/go/version/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/version/v1/versionv1connect"

	"kiln.dev/tests/lib/kilntest"
)

// numTicks reads a flamebearer JSON's total.
func numTicks(t *testing.T, fb string) int64 {
	t.Helper()
	var v struct {
		Flamebearer struct {
			NumTicks int64 `json:"numTicks"`
		} `json:"flamebearer"`
		LeftTicks  int64 `json:"leftTicks"`
		RightTicks int64 `json:"rightTicks"`
	}
	if err := json.Unmarshal([]byte(fb), &v); err != nil {
		t.Fatalf("flamebearer JSON: %v: %.200s", err, fb)
	}
	return v.Flamebearer.NumTicks
}

// TestAdHocProfiles uploads a real pprof with the upstream Connect client
// (proto and JSON), reads it back on the gRPC port too, and checks the
// flame graph totals against the file's, computed with google/pprof.
func TestAdHocProfiles(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("adhoc"))
	cpu := kilntest.LoadProfile(t, root, "grafana-pyroscope/cpu.pb.gz")
	proto := adhocprofilesv1connect.NewAdHocProfileServiceClient(c.HTTP, s.HTTPURL())
	js := adhocprofilesv1connect.NewAdHocProfileServiceClient(c.HTTP, s.HTTPURL(), connect.WithProtoJSON())
	grpc := adhocprofilesv1connect.NewAdHocProfileServiceClient(c.H2C, s.GRPCURL(), connect.WithGRPC())
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	up, err := proto.Upload(ctx, connect.NewRequest(&adhocv1.AdHocProfilesUploadRequest{
		Name: "cpu.pb.gz", Profile: base64.StdEncoding.EncodeToString(cpu.Raw)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Msg.ProfileTypes) != len(cpu.TypeIDs) {
		t.Errorf("profile types %v, want %d", up.Msg.ProfileTypes, len(cpu.TypeIDs))
	}
	if got := numTicks(t, up.Msg.FlamebearerProfile); got != cpu.PerPush[0] {
		t.Errorf("upload: numTicks %d, want %d", got, cpu.PerPush[0])
	}
	want := "cpu"
	got, err := grpc.Get(ctx, connect.NewRequest(&adhocv1.AdHocProfilesGetRequest{Id: up.Msg.Id, ProfileType: &want}))
	if err != nil {
		t.Fatal(err)
	}
	if n := numTicks(t, got.Msg.FlamebearerProfile); n != cpu.PerPush[1] || got.Msg.ProfileType != "cpu" {
		t.Errorf("get cpu: %s numTicks %d, want %d", got.Msg.ProfileType, n, cpu.PerPush[1])
	}
	folded := "main;work;spin 70\nmain;idle 30\n"
	up2, err := js.Upload(ctx, connect.NewRequest(&adhocv1.AdHocProfilesUploadRequest{
		Name: "stacks.txt", Profile: base64.StdEncoding.EncodeToString([]byte(folded))}))
	if err != nil {
		t.Fatal(err)
	}
	if n := numTicks(t, up2.Msg.FlamebearerProfile); n != 100 {
		t.Errorf("folded: numTicks %d, want 100", n)
	}
	list, err := js.List(ctx, connect.NewRequest(&adhocv1.AdHocProfilesListRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Msg.Profiles) != 2 || list.Msg.Profiles[0].Id != up2.Msg.Id {
		t.Errorf("list: %v, want the folded file first of 2", list.Msg.Profiles)
	}
	diff, err := proto.Diff(ctx, connect.NewRequest(&adhocv1.AdHocProfilesDiffRequest{
		LeftId: up.Msg.Id, RightId: up.Msg.Id, ProfileType: &want}))
	if err != nil {
		t.Fatal(err)
	}
	if n := numTicks(t, diff.Msg.FlamebearerProfile); n != 2*cpu.PerPush[1] {
		t.Errorf("diff: numTicks %d, want %d", n, 2*cpu.PerPush[1])
	}
	_, err = proto.Upload(ctx, connect.NewRequest(&adhocv1.AdHocProfilesUploadRequest{
		Name: "bad", Profile: "not base64!"}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("bad base64: %v, want invalid_argument", err)
	}
	_, err = proto.Get(ctx, connect.NewRequest(&adhocv1.AdHocProfilesGetRequest{Id: "01HZZZZZZZZZZZZZZZZZZZZZZZ-nope"}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("absent id: %v, want not_found", err)
	}
	s.RequireAlive(t)
}

// TestSettingsEverywhere: a setting written over gRPC is read over Connect
// JSON, as two clients of one cluster would.
func TestSettingsEverywhere(t *testing.T) {
	kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("settings"))
	grpc := settingsv1connect.NewSettingsServiceClient(c.H2C, s.GRPCURL(), connect.WithGRPC())
	js := settingsv1connect.NewSettingsServiceClient(c.HTTP, s.HTTPURL(), connect.WithProtoJSON())
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	if _, err := grpc.Set(ctx, connect.NewRequest(&settingsv1.SetSettingsRequest{
		Setting: &settingsv1.Setting{Name: "pluginSettings", Value: `{"maxNodes":8192}`, ModifiedAt: 10}})); err != nil {
		t.Fatal(err)
	}
	_, err := js.Set(ctx, connect.NewRequest(&settingsv1.SetSettingsRequest{
		Setting: &settingsv1.Setting{Name: "pluginSettings", Value: "old", ModifiedAt: 5}}))
	if connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Errorf("older set: %v, want already_exists", err)
	}
	got, err := js.Get(ctx, connect.NewRequest(&settingsv1.GetSettingsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Msg.Settings) != 1 || got.Msg.Settings[0].Value != `{"maxNodes":8192}` {
		t.Errorf("get: %v", got.Msg.Settings)
	}
}

// TestStatusVersionCapabilities: what profilecli and Grafana ask a server.
func TestStatusVersionCapabilities(t *testing.T) {
	kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("status"))
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	bi, err := statusv1connect.NewStatusServiceClient(c.HTTP, s.HTTPURL()).
		GetBuildInfo(ctx, connect.NewRequest(&statusv1.GetBuildInfoRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if bi.Msg.Status != "success" || bi.Msg.Data.GetVersion() == "" || bi.Msg.Data.GetRevision() == "" {
		t.Errorf("build info: %v", bi.Msg)
	}
	res, err := c.HTTP.Get(s.HTTPURL() + "/api/v1/status/buildinfo")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(raw), `"version":"`+bi.Msg.Data.Version+`"`) {
		t.Errorf("GET buildinfo: %d %s", res.StatusCode, raw)
	}
	res, err = c.HTTP.Get(s.HTTPURL() + "/api/v1/status/config")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(raw), "\n  http_listen_port: ") {
		t.Errorf("GET config: %d %.300s", res.StatusCode, raw)
	}
	v, err := versionv1connect.NewVersionClient(c.HTTP, s.HTTPURL()).
		Version(ctx, connect.NewRequest(&versionv1.VersionRequest{}))
	if err != nil || v.Msg.QuerierAPI != 1 {
		t.Errorf("version: %v %v", v, err)
	}
	ff, err := capabilitiesv1connect.NewFeatureFlagsServiceClient(c.HTTP, s.HTTPURL()).
		GetFeatureFlags(ctx, connect.NewRequest(&capabilitiesv1.GetFeatureFlagsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	utf8 := false
	for _, f := range ff.Msg.FeatureFlags {
		utf8 = utf8 || (f.Name == "utf8LabelNames" && f.Enabled)
	}
	if !utf8 {
		t.Errorf("feature flags: %v, want utf8LabelNames enabled", ff.Msg.FeatureFlags)
	}
}

// TestSettingsAcrossQueriers: two querier processes of one cluster share
// the bucket, so a setting written through one is read through the other
// at once, and an ad-hoc file uploaded to one is listed and served by the
// other.
func TestSettingsAcrossQueriers(t *testing.T) {
	kilntest.RequireEnv(t)
	nats := kilntest.StartNATS(t)
	bucket := t.TempDir()
	args := kilntest.Args("-cluster.nats-url="+nats.URL(), "-storage.filesystem.dir="+bucket)
	q1 := kilntest.Start(t, kilntest.Target("querier"), kilntest.Name("querier-1"), args)
	q2 := kilntest.Start(t, kilntest.Target("querier"), kilntest.Name("querier-2"), args)
	tenant := kilntest.NewTenant("cluster")
	c1, c2 := q1.Clients(t, tenant), q2.Clients(t, tenant)
	s1 := settingsv1connect.NewSettingsServiceClient(c1.HTTP, q1.HTTPURL())
	s2 := settingsv1connect.NewSettingsServiceClient(c2.HTTP, q2.HTTPURL(), connect.WithProtoJSON())
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	for i, value := range []string{"one", "two"} {
		set := s1
		if i == 1 {
			set = s2 // each querier writes once; both read the last write
		}
		if _, err := set.Set(ctx, connect.NewRequest(&settingsv1.SetSettingsRequest{
			Setting: &settingsv1.Setting{Name: "pluginSettings", Value: value}})); err != nil {
			t.Fatal(err)
		}
		for _, get := range []settingsv1connect.SettingsServiceClient{s1, s2} {
			got, err := get.Get(ctx, connect.NewRequest(&settingsv1.GetSettingsRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Msg.Settings) != 1 || got.Msg.Settings[0].Value != value {
				t.Errorf("after set %q: %v", value, got.Msg.Settings)
			}
		}
	}
	a1 := adhocprofilesv1connect.NewAdHocProfileServiceClient(c1.HTTP, q1.HTTPURL())
	a2 := adhocprofilesv1connect.NewAdHocProfileServiceClient(c2.HTTP, q2.HTTPURL())
	up, err := a1.Upload(ctx, connect.NewRequest(&adhocv1.AdHocProfilesUploadRequest{
		Name: "s.txt", Profile: base64.StdEncoding.EncodeToString([]byte("a;b 3\na;c 4\n"))}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := a2.Get(ctx, connect.NewRequest(&adhocv1.AdHocProfilesGetRequest{Id: up.Msg.Id}))
	if err != nil {
		t.Fatal(err)
	}
	if n := numTicks(t, got.Msg.FlamebearerProfile); n != 7 {
		t.Errorf("the other querier: numTicks %d, want 7", n)
	}
}
