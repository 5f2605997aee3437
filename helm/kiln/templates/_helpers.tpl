{{/* Names and labels shared by every object of the release. */}}

{{- define "kiln.fullname" -}}
{{ .Release.Name }}-kiln
{{- end }}

{{/* The labels a selector matches: never change them (selectors are immutable). */}}
{{- define "kiln.selectorLabels" -}}
app.kubernetes.io/name: kiln
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kiln.labels" -}}
{{ include "kiln.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* Microservices mode: the same, plus the component.
     Call with (dict "root" $ "component" "ingester"). */}}
{{- define "kiln.componentSelectorLabels" -}}
{{ include "kiln.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kiln.componentLabels" -}}
{{ include "kiln.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kiln.image" -}}
"{{ .Values.image.repository }}:{{ .Values.image.tag }}"
{{- end }}

{{- define "kiln.natsURL" -}}
{{- if .Values.nats.enabled -}}
nats://{{ include "kiln.fullname" . }}-nats:4222
{{- else -}}
{{ required "microservices mode: set nats.url, or nats.enabled=true" .Values.nats.url }}
{{- end }}
{{- end }}

{{- define "kiln.bucketClaim" -}}
{{ .Values.storage.shared.existingClaim | default (printf "%s-bucket" (include "kiln.fullname" .)) }}
{{- end }}

{{/* The flags every component of a cluster takes; $(POD_IP) is the
     downward-API variable of kiln.clusterEnv: other processes dial it. */}}
{{- define "kiln.clusterArgs" -}}
- -server.http-listen-port={{ .Values.http.port }}
- -server.grpc-listen-port={{ .Values.grpc.port }}
- -cluster.nats-url={{ include "kiln.natsURL" . }}
- -cluster.advertise-address=$(POD_IP)
- -distributor.replication-factor={{ .Values.replicationFactor }}
{{- range .Values.extraArgs }}
- {{ . }}
{{- end }}
{{- end }}

{{- define "kiln.clusterEnv" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- end }}

{{- define "kiln.ports" -}}
- name: http
  containerPort: {{ .Values.http.port }}
- name: grpc
  containerPort: {{ .Values.grpc.port }}
{{- end }}

{{- define "kiln.readinessProbe" -}}
readinessProbe:
  httpGet:
    path: /ready
    port: http
{{- end }}

{{- define "kiln.checkMode" -}}
{{- if not (has .Values.mode (list "single" "microservices")) }}
{{- fail (printf "mode must be single or microservices, not %q" .Values.mode) }}
{{- end }}
{{- if and (eq .Values.mode "microservices") (gt (int .Values.replicationFactor) (int .Values.ingester.replicas)) }}
{{- fail (printf "replicationFactor %v needs at least as many ingesters (ingester.replicas is %v)" .Values.replicationFactor .Values.ingester.replicas) }}
{{- end }}
{{- end }}
