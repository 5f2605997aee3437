// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"

	bk "kiln.dev/tests/bench/internal/benchkit"
)

// ingest uploads push number i of p to the legacy POST /ingest as the Go
// SDK does: a multipart form whose `profile` part is the gzipped pprof,
// the app name carrying the pod as a tag. The profile's own time is kept
// (no from/until), and no id is sent, so every upload is stored.
func ingest(hc *http.Client, k *bk.Kiln, p *bk.Profile, i int) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("profile", "profile.pprof")
	if err == nil {
		_, err = part.Write(p.Variants[(i/bk.Pods)%len(p.Variants)])
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return err
	}
	q := url.Values{}
	q.Set("name", fmt.Sprintf("%s.cpu{pod=pod-%02d}", p.Service, i%bk.Pods))
	q.Set("spyName", "gospy")
	q.Set("sampleRate", "100")
	ctx, cancel := context.WithTimeout(context.Background(), bk.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+k.HTTP+"/ingest?"+q.Encode(), &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /ingest: %s: %s", resp.Status, msg)
	}
	return nil
}
