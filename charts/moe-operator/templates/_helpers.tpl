{{/* Names. fullname: the release name, or release-chart when the release name does not contain the chart's. */}}
{{- define "moe-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Cluster-scoped objects carry the release namespace too: two releases in two namespaces never collide. */}}
{{- define "moe-operator.clusterName" -}}
{{- printf "%s-%s" (include "moe-operator.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "moe-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "moe-operator.labels" -}}
{{ include "moe-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: moe-operator
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "moe-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "moe-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "moe-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The namespaces the operator watches in namespaces mode, as a JSON list. */}}
{{- define "moe-operator.watchedNamespaces" -}}
{{- if .Values.watch.namespaces -}}
{{- .Values.watch.namespaces | uniq | toJson -}}
{{- else -}}
{{- list .Release.Namespace | toJson -}}
{{- end -}}
{{- end -}}

{{- define "moe-operator.webhookService" -}}{{ include "moe-operator.fullname" . }}-webhook{{- end -}}
{{- define "moe-operator.webhookConfig" -}}{{ include "moe-operator.clusterName" . }}{{- end -}}
{{- define "moe-operator.certSecret" -}}{{ include "moe-operator.fullname" . }}-webhook-cert{{- end -}}
{{- define "moe-operator.certificate" -}}{{ include "moe-operator.fullname" . }}-webhook{{- end -}}
{{- define "moe-operator.peering" -}}{{ include "moe-operator.clusterName" . }}{{- end -}}
{{- define "moe-operator.operatorCerts" -}}{{ and .Values.webhook.enabled (eq .Values.webhook.certificate.source "operator") }}{{- end -}}

{{/* auto|true|false: auto is true when the cluster serves the given API version/kind. */}}
{{- define "moe-operator.enabledFor" -}}
{{- $v := index . 0 -}}{{- $ctx := index . 1 -}}{{- $api := index . 2 -}}
{{- if eq (toString $v) "auto" -}}{{ $ctx.Capabilities.APIVersions.Has $api }}{{- else -}}{{ $v }}{{- end -}}
{{- end -}}
