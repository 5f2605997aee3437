{{/* TLS, mutual TLS and NATS credentials: which are on, where their Secrets
     are mounted, the flags that name the files, and the checks that fail a
     rendering kiln would refuse at start. Every "...On" helper yields "true"
     or "" (an empty string is false in an if). */}}

{{/* Mount points: one directory per Secret, read-only, no subPath (a
     subPath mount never sees a renewal; kiln reloads changed files). */}}
{{- define "kiln.tlsDir" -}}/etc/kiln-tls{{- end }}

{{- define "kiln.httpsOn" -}}
{{- if and .Values.tls.server.enabled .Values.tls.server.http.enabled }}true{{ end }}
{{- end }}

{{- define "kiln.grpcTLSOn" -}}
{{- if and .Values.tls.server.enabled .Values.tls.server.grpc.enabled }}true{{ end }}
{{- end }}

{{/* The cluster plane's mutual TLS: microservices mode only (the single
     process serves ingester.v1 on loopback to itself). */}}
{{- define "kiln.clusterTLSOn" -}}
{{- if and (eq .Values.mode "microservices") .Values.tls.cluster.enabled }}true{{ end }}
{{- end }}

{{- define "kiln.natsTLSOn" -}}
{{- if and (eq .Values.mode "microservices") .Values.nats.tls.enabled }}true{{ end }}
{{- end }}

{{- define "kiln.serverSecret" -}}
{{ .Values.tls.server.secretName | default (printf "%s-server-tls" (include "kiln.fullname" .)) }}
{{- end }}

{{- define "kiln.clusterSecret" -}}
{{ .Values.tls.cluster.secretName | default (printf "%s-cluster-tls" (include "kiln.fullname" .)) }}
{{- end }}

{{- define "kiln.clusterServerName" -}}
{{ .Values.tls.cluster.serverName | default (printf "%s-ingester-headless.%s.svc" (include "kiln.fullname" .) .Release.Namespace) }}
{{- end }}

{{/* The bundled nats-server's certificate. */}}
{{- define "kiln.natsServerSecret" -}}
{{ .Values.nats.tls.serverSecretName | default (printf "%s-nats-tls" (include "kiln.fullname" .)) }}
{{- end }}

{{/* Policies that verify a client certificate, and so need a CA file. */}}
{{- define "kiln.verifies" -}}
{{- if has . (list "VerifyClientCertIfGiven" "RequireAndVerifyClientCert") }}true{{ end }}
{{- end }}

{{/* The client CA file (a separate Secret, or the server Secret's ca.crt). */}}
{{- define "kiln.clientCAPath" -}}
{{- if .Values.tls.server.clientCASecret -}}
{{ include "kiln.tlsDir" . }}/client-ca/ca.crt
{{- else -}}
{{ include "kiln.tlsDir" . }}/server/ca.crt
{{- end }}
{{- end }}

{{- define "kiln.needsClientCA" -}}
{{- $s := .Values.tls.server }}
{{- if or (and (include "kiln.httpsOn" .) (include "kiln.verifies" $s.http.clientAuth)) (and (include "kiln.grpcTLSOn" .) (include "kiln.verifies" $s.grpc.clientAuth)) }}true{{ end }}
{{- end }}

{{/* The Services clients dial, whose names the server certificate carries. */}}
{{- define "kiln.serverServices" -}}
{{- $f := include "kiln.fullname" . }}
{{- if eq .Values.mode "single" -}}
{{ list $f (printf "%s-headless" $f) | toJson }}
{{- else -}}
{{ list (printf "%s-distributor" $f) (printf "%s-querier" $f) (printf "%s-ingester-headless" $f) (printf "%s-compactor" $f) | toJson }}
{{- end }}
{{- end }}

{{/* The push Service's in-cluster name: the ServiceMonitor's serverName. */}}
{{- define "kiln.serverName" -}}
{{ index (include "kiln.serverServices" . | fromJsonArray) 0 }}.{{ .Release.Namespace }}.svc
{{- end }}

{{/* Flags of the public listeners' TLS (every kiln container). */}}
{{- define "kiln.serverTLSArgs" -}}
{{- $s := .Values.tls.server }}
{{- $d := printf "%s/server" (include "kiln.tlsDir" .) }}
{{- if include "kiln.httpsOn" . }}
- -server.http-tls-cert-path={{ $d }}/tls.crt
- -server.http-tls-key-path={{ $d }}/tls.key
- -server.http-tls-client-auth={{ $s.http.clientAuth }}
{{- if include "kiln.verifies" $s.http.clientAuth }}
- -server.http-tls-ca-path={{ include "kiln.clientCAPath" . }}
{{- end }}
{{- end }}
{{- if include "kiln.grpcTLSOn" . }}
- -server.grpc-tls-cert-path={{ $d }}/tls.crt
- -server.grpc-tls-key-path={{ $d }}/tls.key
- -server.grpc-tls-client-auth={{ $s.grpc.clientAuth }}
{{- if include "kiln.verifies" $s.grpc.clientAuth }}
- -server.grpc-tls-ca-path={{ include "kiln.clientCAPath" . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Flags of the cluster plane (every component of a cluster). Call with
     (dict "root" $ "target" "ingester"). Ingesters serve it; distributors
     and queriers dial it with the same certificate as client. */}}
{{- define "kiln.clusterTLSArgs" -}}
{{- $root := .root }}
{{- $d := printf "%s/cluster" (include "kiln.tlsDir" $root) }}
{{- if include "kiln.clusterTLSOn" $root }}
- -server.internal-grpc-listen-port={{ $root.Values.internalGrpc.port }}
{{- if eq .target "ingester" }}
- -server.internal-grpc-listen-address={{ $root.Values.internalGrpc.listenAddress }}
{{- end }}
- -cluster.tls-cert-path={{ $d }}/tls.crt
- -cluster.tls-key-path={{ $d }}/tls.key
- -cluster.tls-ca-path={{ $d }}/ca.crt
- -cluster.tls-server-name={{ include "kiln.clusterServerName" $root }}
{{- end }}
{{- end }}

{{/* Flags of kiln's NATS client: credentials and TLS. The token, user and
     password are not flags here: kiln reads them from its environment
     (KILN_CLUSTER_NATS_*, kiln.natsEnv), so they are neither in the pod spec
     nor in the process list. */}}
{{- define "kiln.natsArgs" -}}
{{- $n := .Values.nats }}
{{- with $n.auth.credsKey }}
- -cluster.nats-creds-file=/etc/kiln-nats/{{ . }}
{{- end }}
{{- if include "kiln.natsTLSOn" . }}
{{- $d := printf "%s/%s" (include "kiln.tlsDir" .) (ternary "nats" "cluster" (ne $n.tls.secretName "")) }}
- -cluster.nats-tls-ca-path={{ $d }}/ca.crt
{{- if $n.tls.clientCert }}
- -cluster.nats-tls-cert-path={{ $d }}/tls.crt
- -cluster.nats-tls-key-path={{ $d }}/tls.key
{{- end }}
{{- end }}
{{- end }}

{{/* The NATS token, user and password from their Secret, as variables:
     for kiln (root, prefix "KILN_CLUSTER_NATS_": its flags
     -cluster.nats-token, -user, -password read from the environment) or for
     the bundled nats-server's $(KILN_NATS_*) arguments (prefix
     "KILN_NATS_"). */}}
{{- define "kiln.natsEnv" -}}
{{- $a := .root.Values.nats.auth }}
{{- $p := .prefix }}
{{- range $var, $key := dict "TOKEN" $a.tokenKey "USER" $a.userKey "PASSWORD" $a.passwordKey }}
{{- if $key }}
- name: {{ $p }}{{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $a.existingSecret }}
      key: {{ $key }}
{{- end }}
{{- end }}
{{- end }}

{{/* A probe of values.yaml, with scheme HTTPS on an httpGet when the HTTP
     port speaks TLS (the kubelet does not verify the certificate). */}}
{{- define "kiln.probe" -}}
{{- $p := deepCopy .probe }}
{{- if and (include "kiln.httpsOn" .root) $p.httpGet }}
{{- $_ := set $p.httpGet "scheme" "HTTPS" }}
{{- end }}
{{- toYaml $p }}
{{- end }}

{{/* The mounts of the Secrets above, in every kiln container. Call with
     (dict "root" $). */}}
{{- define "kiln.secretMounts" -}}
{{- $v := .root.Values }}
{{- $d := include "kiln.tlsDir" .root }}
{{- if or (include "kiln.httpsOn" .root) (include "kiln.grpcTLSOn" .root) }}
- name: tls-server
  mountPath: {{ $d }}/server
  readOnly: true
{{- if and (include "kiln.needsClientCA" .root) $v.tls.server.clientCASecret }}
- name: tls-client-ca
  mountPath: {{ $d }}/client-ca
  readOnly: true
{{- end }}
{{- end }}
{{- if include "kiln.clusterTLSOn" .root }}
- name: tls-cluster
  mountPath: {{ $d }}/cluster
  readOnly: true
{{- end }}
{{- if and (include "kiln.natsTLSOn" .root) $v.nats.tls.secretName }}
- name: tls-nats
  mountPath: {{ $d }}/nats
  readOnly: true
{{- end }}
{{- if and (eq $v.mode "microservices") $v.nats.auth.credsKey }}
- name: nats-creds
  mountPath: /etc/kiln-nats
  readOnly: true
{{- end }}
{{- end }}

{{- define "kiln.secretVolume" -}}
- name: {{ .name }}
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
{{- end }}

{{- define "kiln.secretVolumes" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- if or (include "kiln.httpsOn" $root) (include "kiln.grpcTLSOn" $root) }}
{{ include "kiln.secretVolume" (dict "name" "tls-server" "secret" (include "kiln.serverSecret" $root)) }}
{{- if and (include "kiln.needsClientCA" $root) $v.tls.server.clientCASecret }}
{{ include "kiln.secretVolume" (dict "name" "tls-client-ca" "secret" $v.tls.server.clientCASecret) }}
{{- end }}
{{- end }}
{{- if include "kiln.clusterTLSOn" $root }}
{{ include "kiln.secretVolume" (dict "name" "tls-cluster" "secret" (include "kiln.clusterSecret" $root)) }}
{{- end }}
{{- if and (include "kiln.natsTLSOn" $root) $v.nats.tls.secretName }}
{{ include "kiln.secretVolume" (dict "name" "tls-nats" "secret" $v.nats.tls.secretName) }}
{{- end }}
{{- if and (eq $v.mode "microservices") $v.nats.auth.credsKey }}
{{ include "kiln.secretVolume" (dict "name" "nats-creds" "secret" $v.nats.auth.existingSecret) }}
{{- end }}
{{- end }}

{{/* A cert-manager Certificate. Call with (dict "root" $ "name" <suffix>
     "secret" <secretName> "dnsNames" <list> "usages" <list> "issuerRef"
     <object or empty>). */}}
{{- define "kiln.certificate" -}}
{{- $cm := .root.Values.tls.certManager -}}
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: {{ include "kiln.fullname" .root }}-{{ .name }}
  labels:
    {{- include "kiln.labels" .root | nindent 4 }}
spec:
  secretName: {{ .secret }}
  secretTemplate:
    labels:
      {{- include "kiln.labels" .root | nindent 6 }}
  duration: {{ $cm.duration }}
  renewBefore: {{ $cm.renewBefore }}
  privateKey:
    {{- toYaml $cm.privateKey | nindent 4 }}
  dnsNames:
    {{- toYaml .dnsNames | nindent 4 }}
  usages:
    {{- toYaml .usages | nindent 4 }}
  issuerRef:
    {{- toYaml (.issuerRef | default $cm.issuerRef) | nindent 4 }}
{{- end }}

{{/* Everything kiln would refuse at start, or that cannot work, as a
     rendering error that says what to set. */}}
{{- define "kiln.checkTLS" -}}
{{- $v := .Values }}
{{- $t := $v.tls }}
{{- $cm := $t.certManager.enabled }}
{{- if and $cm (not $t.certManager.issuerRef.name) }}
{{- fail "tls.certManager.enabled needs tls.certManager.issuerRef.name: the Issuer or ClusterIssuer (kind) that signs the certificates" }}
{{- end }}
{{- range $which := list "server" "cluster" }}
{{- $ref := (index $t $which).issuerRef }}
{{- if and $ref (not $ref.name) }}
{{- fail (printf "tls.%s.issuerRef needs a name (or leave it empty for tls.certManager.issuerRef)" $which) }}
{{- end }}
{{- end }}
{{- if and (eq $v.mode "microservices") (not $t.cluster.enabled) }}
{{- fail "mode=microservices needs tls.cluster.enabled: kiln serves the cluster plane (ingester.v1, distributors and queriers to ingesters) off loopback only over mutual TLS. Set tls.cluster.secretName (a kubernetes.io/tls Secret: tls.crt, tls.key, ca.crt) or tls.certManager.enabled with an issuerRef" }}
{{- end }}
{{- if and (include "kiln.clusterTLSOn" .) (not $t.cluster.secretName) (not $cm) }}
{{- fail "mode=microservices needs the cluster certificate (kiln requires mutual TLS between components): set tls.cluster.secretName (a kubernetes.io/tls Secret: tls.crt, tls.key, ca.crt; DNS name tls.cluster.serverName; usages server and client auth) or tls.certManager.enabled with tls.certManager.issuerRef" }}
{{- end }}
{{- if and $t.server.enabled (not $t.server.secretName) (not $cm) }}
{{- fail "tls.server.enabled needs tls.server.secretName (a kubernetes.io/tls Secret: tls.crt, tls.key, ca.crt) or tls.certManager.enabled" }}
{{- end }}
{{- if and $t.server.enabled (not $t.server.http.enabled) (not $t.server.grpc.enabled) }}
{{- fail "tls.server.enabled with neither tls.server.http.enabled nor tls.server.grpc.enabled" }}
{{- end }}
{{- if and (include "kiln.httpsOn" .) (has $t.server.http.clientAuth (list "RequireAnyClientCert" "RequireAndVerifyClientCert")) }}
{{- fail (printf "tls.server.http.clientAuth=%s would refuse the kubelet's probes (they carry no client certificate): use VerifyClientCertIfGiven, and tokens (auth) for clients without one" $t.server.http.clientAuth) }}
{{- end }}
{{- $n := $v.nats }}
{{- if eq $v.mode "microservices" }}
{{- if and (or $n.auth.credsKey $n.auth.tokenKey $n.auth.userKey $n.auth.passwordKey) (not $n.auth.existingSecret) }}
{{- fail "nats.auth.*Key needs nats.auth.existingSecret: the Secret holding the NATS credentials" }}
{{- end }}
{{- if ne (empty $n.auth.userKey) (empty $n.auth.passwordKey) }}
{{- fail "nats.auth.userKey and nats.auth.passwordKey go together" }}
{{- end }}
{{- if and $n.auth.tokenKey $n.auth.userKey }}
{{- fail "nats.auth: a token (tokenKey) or a user and password (userKey, passwordKey), not both" }}
{{- end }}
{{- if and $n.enabled $n.auth.credsKey }}
{{- fail "nats.auth.credsKey (a JWT credentials file) needs an operator-mode nats-server: use nats.enabled=false and nats.url, or tokenKey / userKey with the bundled one" }}
{{- end }}
{{- if and $n.enabled $n.tls.enabled (not $n.tls.serverSecretName) (not $cm) }}
{{- fail "nats.tls.enabled with the bundled nats-server needs its certificate: nats.tls.serverSecretName, or tls.certManager.enabled" }}
{{- end }}
{{- end }}
{{- end }}
