{{/* The chart name, or nameOverride. */}}
{{- define "elastic-tts.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: release-chart, or the release name when it already contains the chart name. */}}
{{- define "elastic-tts.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Selector labels: name and instance only, because a Deployment's selector is immutable. */}}
{{- define "elastic-tts.selectorLabels" -}}
app.kubernetes.io/name: {{ include "elastic-tts.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The standard labels on every object. */}}
{{- define "elastic-tts.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "elastic-tts.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: elastic-tts
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "elastic-tts.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "elastic-tts.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "elastic-tts.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "elastic-tts.peeringName" -}}
{{- default (include "elastic-tts.fullname" .) .Values.peering.name }}
{{- end }}

{{/* The operator's arguments: what to watch, and whether it runs standalone or peered. */}}
{{- define "elastic-tts.args" -}}
- run
{{- if .Values.watch.namespaces }}
{{- range .Values.watch.namespaces }}
- --namespace={{ . }}
{{- end }}
{{- else }}
- --all-namespaces
{{- end }}
{{- if .Values.peering.enabled }}
- --peering={{ include "elastic-tts.peeringName" . }}
{{- else }}
- --standalone
{{- end }}
- --liveness=http://0.0.0.0:{{ .Values.health.port }}/healthz
- --metrics-port={{ .Values.metrics.port }}
- --log-level={{ .Values.logging.level }}
- --log-format={{ .Values.logging.format }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* An alert's labels: its severity, then prometheusRule.alertLabels. */}}
{{- define "elastic-tts.alertLabels" -}}
severity: {{ .severity }}
{{- with .rule.alertLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}
