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

{{- define "kiln.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (include "kiln.fullname" .) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end }}
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

{{/* True (non-empty) when the components share a ReadWriteMany volume. */}}
{{- define "kiln.sharedVolume" -}}
{{- if and (eq .Values.mode "microservices") (eq .Values.storage.backend "filesystem") }}true{{ end }}
{{- end }}

{{/* The object-store flags. filesystem adds no -storage.backend flag (the
     default), so the chart also runs a kiln that predates the s3 backend. */}}
{{- define "kiln.storageArgs" -}}
{{- $s := .Values.storage }}
{{- if eq $s.backend "s3" }}
- -storage.backend=s3
- -storage.s3.endpoint={{ required "storage.backend=s3: set storage.s3.endpoint" $s.s3.endpoint }}
- -storage.s3.bucket-name={{ required "storage.backend=s3: set storage.s3.bucketName" $s.s3.bucketName }}
{{- with $s.s3.region }}
- -storage.s3.region={{ . }}
{{- end }}
- -storage.s3.insecure={{ $s.s3.insecure }}
- -storage.s3.force-path-style={{ $s.s3.forcePathStyle }}
- -storage.cache.dir=/data/cache
- -storage.cache.max-size-bytes={{ $s.cache.maxSizeBytes }}
{{- else if eq .Values.mode "microservices" }}
- -storage.filesystem.dir=/bucket
{{- end }}
{{- with $s.prefix }}
- -storage.prefix={{ . }}
{{- end }}
{{- end }}

{{/* The flags every component of a cluster takes; $(POD_IP) is the
     downward-API variable of kiln.env: other processes dial it. */}}
{{- define "kiln.clusterArgs" -}}
- -cluster.nats-url={{ include "kiln.natsURL" . }}
- -cluster.advertise-address=$(POD_IP)
- -distributor.replication-factor={{ .Values.replicationFactor }}
{{- with (include "kiln.natsArgs" . | trim) }}
{{ . }}
{{- end }}
{{- end }}

{{/* Every kiln container's arguments.
     Call with (dict "root" $ "target" "ingester" "c" .Values.ingester
     "otlp" true "zone" "zone-a" "single" false); c is the component's values
     (single mode: the root values, whose extraArgs are then not repeated). */}}
{{- define "kiln.args" -}}
{{- $v := .root.Values -}}
- -target={{ .target }}
- -server.http-listen-port={{ $v.http.port }}
- -server.grpc-listen-port={{ $v.grpc.port }}
- -server.otlp-grpc-listen-port={{ if .otlp }}{{ $v.otlp.port }}{{ else }}-1{{ end }}
- -storage.path=/data
{{- with (include "kiln.storageArgs" .root | trim) }}
{{ . }}
{{- end }}
{{- if $v.config }}
- -config.file=/etc/kiln/config.yaml
{{- end }}
{{- if $v.runtimeConfig }}
- -runtime-config.file=/etc/kiln/runtime-config.yaml
{{- end }}
{{- if eq $v.mode "microservices" }}
{{ include "kiln.clusterArgs" .root }}
{{- with (include "kiln.clusterTLSArgs" . | trim) }}
{{ . }}
{{- end }}
{{- end }}
{{- with (include "kiln.serverTLSArgs" .root | trim) }}
{{ . }}
{{- end }}
{{- with .zone }}
- -ingester.availability-zone={{ . }}
{{- end }}
{{- if $v.auth.enabled }}
- -auth.tokens-file=/etc/kiln-auth/{{ $v.auth.tokensKey }}
- -auth.multitenancy-enabled={{ $v.auth.multitenancy }}
{{- end }}
{{- if not $v.auth.metricsTenantLabels }}
- -server.metrics-tenant-labels=false
{{- end }}
{{- range $v.extraArgs }}
- {{ . }}
{{- end }}
{{- if not .single }}
{{- range .c.extraArgs }}
- {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Every kiln container's environment: its pod IP, the object store's
     credentials from a Secret, then extraEnv (global, the component's). */}}
{{- define "kiln.env" -}}
{{- $v := .root.Values }}
{{- $s3 := $v.storage.s3 -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- if and (eq $v.storage.backend "s3") $s3.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $s3.existingSecret }}
      key: {{ $s3.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $s3.existingSecret }}
      key: {{ $s3.secretAccessKeyKey }}
{{- with $s3.sessionTokenKey }}
- name: AWS_SESSION_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $s3.existingSecret }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- if eq $v.mode "microservices" }}
{{- with (include "kiln.natsEnv" (dict "root" .root "prefix" "KILN_CLUSTER_NATS_") | trim) }}
{{ . }}
{{- end }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- if not .single }}
{{- with .c.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/* The default spread of a component's pods: across zones (preferred, so
     single-zone clusters still schedule) and across nodes. */}}
{{- define "kiln.defaultSpread" -}}
- maxSkew: 1
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- .labels | nindent 6 }}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- .labels | nindent 6 }}
{{- end }}

{{/* A kiln pod template. Call with (dict "root" $ "target" "ingester"
     "c" <component values> "labels" <selector labels, YAML> "otlp" bool
     "zone" <zone name> "nodeSelector" <zone's nodeSelector> "pvc" bool
     "grace" <seconds>). pvc: /data is the StatefulSet's claim "data";
     otherwise an emptyDir. */}}
{{- define "kiln.podTemplate" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $c := .c -}}
metadata:
  labels:
    {{- .labels | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "kiln.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $v.serviceAccount.automountServiceAccountToken }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .grace }}
  terminationGracePeriodSeconds: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  {{- $ns := merge (dict) (.nodeSelector | default dict) ($c.nodeSelector | default $v.nodeSelector) }}
  {{- with $ns }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with ($c.tolerations | default $v.tolerations) }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $c.affinity }}
  affinity:
    {{- toYaml $c.affinity | nindent 4 }}
  {{- else if eq .target "ingester" }}
  # Two ingesters of the release never share a node: losing one node loses
  # at most one replica of a series.
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "kiln.componentSelectorLabels" (dict "root" $root "component" "ingester") | nindent 14 }}
  {{- end }}
  {{- if $c.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml $c.topologySpreadConstraints | nindent 4 }}
  {{- else if not .single }}
  topologySpreadConstraints:
    {{- include "kiln.defaultSpread" (dict "labels" .labels) | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ if .single }}kiln{{ else }}{{ .target }}{{ end }}
      image: {{ include "kiln.image" $root }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args:
        {{- include "kiln.args" . | nindent 8 }}
      env:
        {{- include "kiln.env" . | nindent 8 }}
      ports:
        - name: http
          containerPort: {{ $v.http.port }}
        - name: grpc
          containerPort: {{ $v.grpc.port }}
        {{- if .otlp }}
        - name: otlp-grpc
          containerPort: {{ $v.otlp.port }}
        {{- end }}
        {{- if and (eq .target "ingester") (include "kiln.clusterTLSOn" $root) }}
        - name: grpc-internal
          containerPort: {{ $v.internalGrpc.port }}
        {{- end }}
      startupProbe:
        {{- include "kiln.probe" (dict "root" $root "probe" $v.startupProbe) | nindent 8 }}
      livenessProbe:
        {{- include "kiln.probe" (dict "root" $root "probe" $v.livenessProbe) | nindent 8 }}
      readinessProbe:
        {{- include "kiln.probe" (dict "root" $root "probe" $v.readinessProbe) | nindent 8 }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      resources:
        {{- toYaml $c.resources | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: /data
        - name: config
          mountPath: /etc/kiln
          readOnly: true
        {{- if and (include "kiln.sharedVolume" $root) (ne .target "distributor") }}
        - name: bucket
          mountPath: /bucket
        {{- end }}
        {{- if $v.auth.enabled }}
        # A directory mount (not subPath) so Secret updates reach kiln.
        - name: auth-tokens
          mountPath: /etc/kiln-auth
          readOnly: true
        {{- end }}
        {{- with (include "kiln.secretMounts" . | trim) }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with $v.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    {{- if not .pvc }}
    - name: data
      emptyDir:
        {{- if eq $v.storage.backend "s3" }}
        sizeLimit: {{ $v.storage.cache.emptyDirSizeLimit }}
        {{- else }}
        {}
        {{- end }}
    {{- end }}
    - name: config
      configMap:
        name: {{ include "kiln.fullname" $root }}-config
    {{- if and (include "kiln.sharedVolume" $root) (ne .target "distributor") }}
    - name: bucket
      persistentVolumeClaim:
        claimName: {{ include "kiln.bucketClaim" $root }}
    {{- end }}
    {{- if $v.auth.enabled }}
    - name: auth-tokens
      secret:
        secretName: {{ $v.auth.existingSecret }}
        defaultMode: 0440
    {{- end }}
    {{- with (include "kiln.secretVolumes" . | trim) }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with $v.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* The per-process PVC of a StatefulSet (its /data). */}}
{{- define "kiln.dataClaim" -}}
- metadata:
    name: data
  spec:
    accessModes: ["ReadWriteOnce"]
    {{- with .Values.storage.storageClassName }}
    storageClassName: {{ . }}
    {{- end }}
    resources:
      requests:
        storage: {{ .Values.storage.size }}
{{- end }}

{{/* A component's PodDisruptionBudget. Call with (dict "root" $
     "component" "querier" "name" <object name> "pdb" <podDisruptionBudget>
     "labels" <selector labels, YAML>). */}}
{{- define "kiln.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  labels:
    {{- include "kiln.labels" .root | nindent 4 }}
    {{- with .component }}
    app.kubernetes.io/component: {{ . }}
    {{- end }}
spec:
  {{- if hasKey .pdb "minAvailable" }}
  minAvailable: {{ .pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- .labels | nindent 6 }}
{{- end }}

{{/* A component's HorizontalPodAutoscaler. Call with (dict "root" $
     "component" "querier" "a" <autoscaling values>). */}}
{{- define "kiln.hpa" -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "kiln.fullname" .root }}-{{ .component }}
  labels:
    {{- include "kiln.componentLabels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "kiln.fullname" .root }}-{{ .component }}
  minReplicas: {{ .a.minReplicas }}
  maxReplicas: {{ .a.maxReplicas }}
  metrics:
    {{- with .a.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with .a.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
{{- end }}

{{/* The ingesters there will be: replicas, or the zones' sum. */}}
{{- define "kiln.ingesterCount" -}}
{{- $ing := .Values.ingester }}
{{- if $ing.zoneAwareReplication.enabled }}
{{- $n := 0 }}
{{- range $ing.zoneAwareReplication.zones }}
{{- $n = add $n (.replicas | default 1) }}
{{- end }}
{{- $n }}
{{- else }}
{{- $ing.replicas }}
{{- end }}
{{- end }}

{{- define "kiln.checkMode" -}}
{{- if not (has .Values.mode (list "single" "microservices")) }}
{{- fail (printf "mode must be single or microservices, not %q" .Values.mode) }}
{{- end }}
{{- include "kiln.checkTLS" . }}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) }}
{{- fail "auth.enabled needs auth.existingSecret: the Secret holding the tokens file" }}
{{- end }}
{{- if eq .Values.mode "microservices" }}
{{- $n := int (include "kiln.ingesterCount" .) }}
{{- if gt (int .Values.replicationFactor) $n }}
{{- fail (printf "replicationFactor %v needs at least as many ingesters (there are %d)" .Values.replicationFactor $n) }}
{{- end }}
{{- $z := .Values.ingester.zoneAwareReplication }}
{{- if and $z.enabled (lt (len $z.zones) 1) }}
{{- fail "ingester.zoneAwareReplication.enabled needs ingester.zoneAwareReplication.zones" }}
{{- end }}
{{- end }}
{{- end }}
