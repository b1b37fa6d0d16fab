{{/* Names, labels, images and the environment shared by the chart's templates. */}}

{{- define "cj.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object name: release-chart, or fullnameOverride. 40 characters leave
room for the longest suffix ("-provider-api-metrics") within the 63-character limit. */}}
{{- define "cj.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cj.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "cj.labels" -}}
helm.sh/chart: {{ include "cj.chart" . }}
app.kubernetes.io/name: {{ include "cj.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cj-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: include "cj.selectorLabels" (list $ "worker"). */}}
{{- define "cj.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "cj.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* All labels of one component's objects: include "cj.componentLabels" (list $ "worker"). */}}
{{- define "cj.componentLabels" -}}
{{ include "cj.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* Image reference: include "cj.image" (list $ .Values.operator.image). */}}
{{- define "cj.image" -}}
{{- $ := index . 0 -}}
{{- $img := index . 1 -}}
{{- $repo := $img.repository -}}
{{- if $.Values.image.registry }}{{ $repo = printf "%s/%s" ($.Values.image.registry | trimSuffix "/") $img.repository }}{{ end -}}
{{- if $img.digest -}}
{{ $repo }}@{{ $img.digest }}
{{- else -}}
{{ $repo }}:{{ default $.Chart.AppVersion $img.tag }}
{{- end -}}
{{- end }}

{{- define "cj.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (printf "%s-operator" (include "cj.fullname" .)) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cj.providerApi.serviceAccountName" -}}
{{- if .Values.providerApi.serviceAccount.create }}
{{- default (printf "%s-provider-api" (include "cj.fullname" .)) .Values.providerApi.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.providerApi.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cj.worker.serviceAccountName" -}}
{{- if .Values.worker.serviceAccount.create }}
{{- default (printf "%s-worker" (include "cj.fullname" .)) .Values.worker.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.worker.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Logging variables: include "cj.env.logging" (list $ "CJ_") for the provider side,
(list $ "CJ_OPERATOR_") for the operator and its migration Job. */}}
{{- define "cj.env.logging" -}}
{{- $ := index . 0 -}}
- name: {{ index . 1 }}LOG_LEVEL
  value: {{ $.Values.logging.level | quote }}
- name: {{ index . 1 }}LOG_FORMAT
  value: {{ $.Values.logging.format | quote }}
{{- end }}

{{/* KAFKA_BOOTSTRAP_SERVERS. */}}
{{- define "cj.env.kafka" -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
{{- end }}

{{/* REDIS_URL, with the password from the existing Secret through $(REDIS_PASSWORD). */}}
{{- define "cj.env.redisUrl" -}}
{{- $r := .Values.redis -}}
{{- $scheme := ternary "rediss" "redis" $r.tls -}}
{{- if $r.password.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $r.password.existingSecret | quote }}
      key: {{ $r.password.key | quote }}
- name: REDIS_URL
  value: {{ printf "%s://:$(REDIS_PASSWORD)@%s:%v/%v" $scheme $r.host $r.port $r.database | quote }}
{{- else }}
- name: REDIS_URL
  value: {{ printf "%s://%s:%v/%v" $scheme $r.host $r.port $r.database | quote }}
{{- end }}
{{- end }}

{{/* The provider side's Redis settings: REDIS_URL, the key prefix and the consumer group. */}}
{{- define "cj.env.redis" -}}
{{- $r := .Values.redis -}}
{{ include "cj.env.redisUrl" . | trim }}
- name: CJ_REDIS_KEY_PREFIX
  value: {{ $r.keyPrefix | quote }}
- name: CJ_STREAM_CONSUMER_GROUP
  value: {{ $r.consumerGroup | quote }}
{{- end }}

{{/* Topic bootstrap settings of the provider side (API, workers, bootstrap Job). */}}
{{- define "cj.env.topics" -}}
{{- $t := .Values.kafka.topics -}}
{{- with $t.names }}
- name: CJ_KAFKA_TOPICS
  value: {{ toJson . | quote }}
{{- end }}
- name: CJ_KAFKA_TOPIC_PARTITIONS
  value: {{ $t.partitions | quote }}
- name: CJ_KAFKA_TOPIC_REPLICATION_FACTOR
  value: {{ $t.replicationFactor | quote }}
{{- if $t.minInsyncReplicas }}
- name: CJ_KAFKA_TOPIC_MIN_INSYNC_REPLICAS
  value: {{ $t.minInsyncReplicas | quote }}
{{- end }}
{{- end }}

{{/* DATABASE_URL: a whole URL from a Secret, or composed with $(DATABASE_PASSWORD). */}}
{{- define "cj.env.database" -}}
{{- $d := .Values.database -}}
{{- if $d.urlSecret.existingSecret }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $d.urlSecret.existingSecret | quote }}
      key: {{ $d.urlSecret.key | quote }}
{{- else }}
{{- if not $d.password.existingSecret }}
{{- fail "database.password.existingSecret (or database.urlSecret.existingSecret) is required: the chart never stores the database password itself" }}
{{- end }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $d.password.existingSecret | quote }}
      key: {{ $d.password.key | quote }}
- name: DATABASE_URL
  value: {{ printf "postgresql+asyncpg://%s:$(DATABASE_PASSWORD)@%s:%v/%s%s" $d.user $d.host $d.port $d.name (ternary (printf "?%s" $d.parameters) "" (ne $d.parameters "")) | quote }}
{{- end }}
{{- end }}

{{/* Settings map (name: value) as env entries: include "cj.env.settings" .Values.worker.settings */}}
{{- define "cj.env.settings" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* Scrape annotations: include "cj.metricsAnnotations" (list $ port). */}}
{{- define "cj.metricsAnnotations" -}}
{{- if (index . 0).Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ index . 1 | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/* The writable /tmp every container gets (the root filesystem is read-only). */}}
{{- define "cj.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}
{{- define "cj.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{/* The URL the operator calls. */}}
{{- define "cj.providerApiUrl" -}}
{{- if .Values.operator.providerApiUrl }}
{{- .Values.operator.providerApiUrl }}
{{- else }}
{{- printf "http://%s-provider-api.%s.svc:%v" (include "cj.fullname" .) .Release.Namespace .Values.providerApi.service.port }}
{{- end }}
{{- end }}

{{/* A pod spec's topologySpreadConstraints from a component's value: include
"cj.topologySpread" (list $ "worker" .Values.worker.topologySpreadConstraints). A constraint
without labelSelector gets the component's selector labels (the spread is of its own pods). */}}
{{- define "cj.topologySpread" -}}
{{- $ := index . 0 -}}
{{- $selector := dict "matchLabels" (include "cj.selectorLabels" (list $ (index . 1)) | fromYaml) -}}
{{- $out := list -}}
{{- range index . 2 }}
{{- $c := deepCopy . }}
{{- if not $c.labelSelector }}
{{- $_ := set $c "labelSelector" $selector }}
{{- end }}
{{- $out = append $out $c }}
{{- end }}
{{- with $out }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Image pull secrets of every pod. */}}
{{- define "cj.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding the provider API's bearer token: the named one, else the
generated `<fullname>-provider-api-token`; empty when authentication is off. */}}
{{- define "cj.authToken.secretName" -}}
{{- $a := .Values.providerApi.authToken -}}
{{- if $a.enabled }}
{{- default (printf "%s-provider-api-token" (include "cj.fullname" .)) $a.existingSecret }}
{{- end }}
{{- end }}

{{/* CJ_ENABLED_PROVIDERS of the API and the workers (they must agree). */}}
{{- define "cj.env.enabledProviders" -}}
- name: CJ_ENABLED_PROVIDERS
  value: {{ .Values.enabledProviders | toJson | quote }}
{{- end }}

{{/* The operator's own settings (names from operator/src/cj_operator/settings.py). */}}
{{- define "cj.env.operator" -}}
{{- $c := .Values.operator -}}
- name: CJ_OPERATOR_PROVIDER_API_URL
  value: {{ include "cj.providerApiUrl" . | quote }}
{{- with include "cj.authToken.secretName" . }}
- name: CJ_OPERATOR_PROVIDER_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $.Values.providerApi.authToken.key | quote }}
{{- end }}
- name: CJ_OPERATOR_METRICS_HOST
  value: "0.0.0.0"
- name: CJ_OPERATOR_METRICS_PORT
  value: {{ $c.metricsPort | quote }}
- name: CJ_OPERATOR_MIGRATE_ON_START
  value: {{ eq .Values.migrations.mode "operatorStart" | quote }}
# The provider API's request TTL (CJ_API_REQUEST_TTL_SECONDS, same value): the overdue
# cutoff is derived from it unless CJ_OPERATOR_CALLBACK_TIMEOUT_MINUTES is set.
- name: CJ_OPERATOR_QUEUE_REQUEST_TTL_SECONDS
  value: {{ .Values.queue.requestTtlSeconds | quote }}
{{- $t := .Values.kafka.topics }}
- name: CJ_OPERATOR_CREATE_TOPICS
  value: {{ $t.bootstrapOnStart | quote }}
- name: CJ_OPERATOR_TOPIC_PARTITIONS
  value: {{ $t.partitions | quote }}
- name: CJ_OPERATOR_TOPIC_REPLICATION_FACTOR
  value: {{ $t.replicationFactor | quote }}
{{- if $c.peering.enabled }}
- name: CJ_OPERATOR_PEERING_NAME
  value: {{ $c.peering.name | quote }}
# The replica's peering identity (kopf reads it too): the pod name.
- name: POD_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
{{- end }}
