{{/*
Labels of every object of one app. Call with (dict "name" <app name> "root" $).
*/}}
{{- define "apps.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "apps.labels" -}}
{{ include "apps.selectorLabels" . }}
app.kubernetes.io/part-of: k3s-vps-platform
app.kubernetes.io/managed-by: stack
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}
