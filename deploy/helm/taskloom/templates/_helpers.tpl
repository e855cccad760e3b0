{{/* Names, labels and shared pieces of the Taskloom chart. */}}

{{- define "taskloom.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "taskloom.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "taskloom.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "taskloom.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: taskloom
{{- end -}}

{{/* selector labels of one component: (dict "root" $ "component" "gateway") */}}
{{- define "taskloom.selectorLabels" -}}
app.kubernetes.io/name: {{ include "taskloom.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "taskloom.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "taskloom.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "taskloom.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "taskloom.secretName" -}}
{{- default (include "taskloom.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "taskloom.configName" -}}
{{- printf "%s-config" (include "taskloom.fullname" .) -}}
{{- end -}}

{{- define "taskloom.policiesName" -}}
{{- default (printf "%s-context-policies" (include "taskloom.fullname" .)) .Values.contextPolicies.existingConfigMap -}}
{{- end -}}

{{- define "taskloom.natsUrl" -}}
{{- if .Values.nats.bundled.enabled -}}
{{- printf "nats://%s-nats:4222" (include "taskloom.fullname" .) -}}
{{- else -}}
{{- required "nats.url is required when nats.bundled.enabled is false" .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{/* the NATS user of an agent group */}}
{{- define "taskloom.agentUser" -}}
{{- printf "agents-%s" . -}}
{{- end -}}

{{/* every NATS user of the release, in the order the authorization block lists them */}}
{{- define "taskloom.natsUsers" -}}
{{- $users := list "gateway" "constructor" "orchestrator" "context" -}}
{{- range .Values.agents.groups -}}
{{- $users = append $users (include "taskloom.agentUser" .name) -}}
{{- end -}}
{{- $users = append $users "admin" -}}
{{- toJson $users -}}
{{- end -}}

{{/* TASKLOOM_NATS_PASSWORD_<USER>, the variable nats-server reads a user's password from */}}
{{- define "taskloom.passwordEnv" -}}
{{- printf "TASKLOOM_NATS_PASSWORD_%s" (regexReplaceAll "[^A-Za-z0-9]" (upper .) "_") -}}
{{- end -}}

{{/*
Secret values, computed once per render: given in values, else kept from the Secret already in
the cluster (upgrades), else generated.
*/}}
{{- define "taskloom.secretValues" -}}
{{- if not (hasKey .Values "__taskloomSecrets") -}}
{{- $existing := (lookup "v1" "Secret" .Release.Namespace (include "taskloom.fullname" .)) | default dict -}}
{{- $old := $existing.data | default dict -}}
{{- $s := dict -}}
{{- $_ := set $s "jwt-secret" (.Values.secrets.jwtSecret | default (get $old "jwt-secret" | default "" | b64dec) | default (randAlphaNum 48)) -}}
{{- $keys := .Values.secrets.contextEncryptionKeys -}}
{{- if $keys -}}
{{- $_ := set $s "context-encryption-keys" (toJson $keys) -}}
{{- else -}}
{{- $_ := set $s "context-encryption-keys" (get $old "context-encryption-keys" | default "" | b64dec | default (toJson (list (randAlphaNum 32 | b64enc | replace "+" "-" | replace "/" "_")))) -}}
{{- end -}}
{{- range $user := (include "taskloom.natsUsers" . | fromJsonArray) -}}
{{- $key := printf "nats-password-%s" $user -}}
{{- $_ := set $s $key (get $.Values.secrets.natsPasswords $user | default (get $old $key | default "" | b64dec) | default (randAlphaNum 32)) -}}
{{- end -}}
{{- if .Values.postgresql.bundled.enabled -}}
{{- $pg := .Values.secrets.postgresPassword | default (get $old "postgres-password" | default "" | b64dec) | default (randAlphaNum 32) -}}
{{- $_ := set $s "postgres-password" $pg -}}
{{- $b := .Values.postgresql.bundled -}}
{{- $_ := set $s "database-url" (printf "postgresql://%s:%s@%s-postgresql:5432/%s" $b.user $pg (include "taskloom.fullname" .) $b.database) -}}
{{- else -}}
{{- $_ := set $s "database-url" (required "postgresql.url (or secrets.existingSecret with database-url) is required when postgresql.bundled.enabled is false" .Values.postgresql.url) -}}
{{- end -}}
{{- if .Values.secrets.jwtPrivateKey -}}
{{- $_ := set $s "jwt-private-key" .Values.secrets.jwtPrivateKey -}}
{{- end -}}
{{- if .Values.secrets.jwtPublicKey -}}
{{- $_ := set $s "jwt-public-key" .Values.secrets.jwtPublicKey -}}
{{- end -}}
{{- $_ := set .Values "__taskloomSecrets" $s -}}
{{- end -}}
{{- toJson (get .Values "__taskloomSecrets") -}}
{{- end -}}

{{/* one permissions object in nats-server syntax; the same text taskloom.natsauth writes */}}
{{- define "taskloom.natsPermissionsText" -}}
{{- $parts := list -}}
{{- range $key := list "publish" "subscribe" -}}
{{- $rule := get $ $key | default dict -}}
{{- $r := list -}}
{{- range $k := list "allow" "deny" -}}
{{- $items := get $rule $k | default list -}}
{{- if $items -}}
{{- $q := list -}}
{{- range $items }}{{ $q = append $q (quote .) }}{{ end -}}
{{- $r = append $r (printf "%s: [%s]" $k (join ", " $q)) -}}
{{- end -}}
{{- end -}}
{{- if $r -}}
{{- $parts = append $parts (printf "%s: {%s}" $key (join ", " $r)) -}}
{{- end -}}
{{- end -}}
{{- if get $ "allow_responses" -}}
{{- $parts = append $parts "allow_responses: true" -}}
{{- end -}}
{{- printf "{%s}" (join ", " $parts) -}}
{{- end -}}

{{/* the union of permission objects (a list), first occurrence order, like Permissions.merged */}}
{{- define "taskloom.natsMerge" -}}
{{- $out := dict -}}
{{- $responses := false -}}
{{- range $key := list "publish" "subscribe" -}}
{{- $rule := dict -}}
{{- range $k := list "allow" "deny" -}}
{{- $items := list -}}
{{- range $p := $ -}}
{{- $items = concat $items ((get (get $p $key | default dict) $k) | default list) -}}
{{- end -}}
{{- if $items -}}
{{- $_ := set $rule $k (uniq $items) -}}
{{- end -}}
{{- end -}}
{{- if $rule -}}
{{- $_ := set $out $key $rule -}}
{{- end -}}
{{- end -}}
{{- range $p := $ -}}
{{- if get $p "allow_responses" -}}
{{- $responses = true -}}
{{- end -}}
{{- end -}}
{{- if $responses -}}
{{- $_ := set $out "allow_responses" true -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* nats-server's authorization block for every user, from files/nats-permissions.json */}}
{{- define "taskloom.natsAuthorization" -}}
{{- $ns := .Values.config.namespace -}}
{{- $text := .Files.Get "files/nats-permissions.json" | replace "@NS@" (upper $ns) | replace "@ns@" $ns -}}
{{- $perm := fromJson $text -}}
{{- $agentText := toJson $perm.agent -}}
authorization {
  users: [
{{- range $svc := list "gateway" "constructor" "orchestrator" "context" }}
    {user: {{ quote $svc }}, password: ${{ include "taskloom.passwordEnv" $svc }}, permissions: {{ include "taskloom.natsPermissionsText" (get $perm.services $svc) }}}
{{- end }}
{{- range $g := .Values.agents.groups }}
{{- $user := include "taskloom.agentUser" $g.name }}
{{- $all := list (toJson $perm.agentGroup | replace "@user@" (regexReplaceAll "[^A-Za-z0-9_-]" $user "_") | fromJson) -}}
{{- range $a := $g.agents -}}
{{- $one := $agentText | replace "@agent_name@" (regexReplaceAll "[^A-Za-z0-9_]" $a "_") | replace "@agent@" $a | fromJson -}}
{{- $all = append $all $one -}}
{{- end }}
    {user: {{ quote $user }}, password: ${{ include "taskloom.passwordEnv" $user }}, permissions: {{ include "taskloom.natsPermissionsText" (include "taskloom.natsMerge" $all | fromJson) }}}
{{- end }}
    {user: {{ quote $perm.admin.user }}, password: ${{ include "taskloom.passwordEnv" $perm.admin.user }}, permissions: {{ include "taskloom.natsPermissionsText" $perm.admin.permissions }}}
  ]
}
{{ end -}}

{{/* pod-level scheduling shared by every component: (dict "root" $ "component" "x") */}}
{{- define "taskloom.podScheduling" -}}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "taskloom.selectorLabels" . | nindent 14 }}
{{- with .root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
