{{- define "tradingvenue.name" -}}tradingvenue-operator{{- end -}}

{{- define "tradingvenue.fullname" -}}
{{- if contains "tradingvenue-operator" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-tradingvenue-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels; app.kubernetes.io/name is what a managed Redis's NetworkPolicy admits, from the release's namespace only. */}}
{{- define "tradingvenue.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tradingvenue.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tradingvenue.labels" -}}
{{ include "tradingvenue.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: tradingvenue
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
