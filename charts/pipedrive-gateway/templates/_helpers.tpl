{{/* Names ------------------------------------------------------------------ */}}

{{- define "pipedrive-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fullname, at most 52 characters so "<fullname>-headless" and friends stay DNS labels. */}}
{{- define "pipedrive-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "pipedrive-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pipedrive-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pipedrive-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pipedrive-gateway.labels" -}}
helm.sh/chart: {{ include "pipedrive-gateway.chart" . }}
{{ include "pipedrive-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pipedrive-gateway
{{- end }}

{{- define "pipedrive-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pipedrive-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of the Secret the env secrets are read from. */}}
{{- define "pipedrive-gateway.secretName" -}}
{{- default (include "pipedrive-gateway.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
Name of the Secret holding STATE_KEY and STATE_KEY_PREVIOUS: a Secret of its own,
kept on uninstall, unless existingSecret holds them.
*/}}
{{- define "pipedrive-gateway.stateSecretName" -}}
{{- default (printf "%s-state-key" (include "pipedrive-gateway.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "pipedrive-gateway.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* "true" when a value is neither null nor "". */}}
{{- define "pipedrive-gateway.isSet" -}}
{{- if and (not (kindIs "invalid" .)) (ne (toString .) "") }}true{{ end }}
{{- end }}

{{- define "pipedrive-gateway.embedded" -}}
{{- if eq .Values.nats.mode "embedded" }}true{{ end }}
{{- end }}

{{/* Ports ------------------------------------------------------------------- */}}

{{/* The port number at the end of a listen address like ":8080" or "0.0.0.0:8080". */}}
{{- define "pipedrive-gateway.port" -}}
{{- $port := regexFind "[0-9]+$" (toString .addr) }}
{{- if not $port }}
{{- fail (printf "%s=%q must end with a port number, e.g. \":8080\"" .name (toString .addr)) }}
{{- end }}
{{- $port }}
{{- end }}

{{- define "pipedrive-gateway.httpPort" -}}
{{- include "pipedrive-gateway.port" (dict "name" "config.httpAddr" "addr" .Values.config.httpAddr) }}
{{- end }}

{{- define "pipedrive-gateway.opsPort" -}}
{{- include "pipedrive-gateway.port" (dict "name" "config.opsAddr" "addr" .Values.config.opsAddr) }}
{{- end }}

{{/* PUBLIC_URL: config.publicUrl, else derived from the first ingress host. */}}
{{- define "pipedrive-gateway.publicUrl" -}}
{{- if .Values.config.publicUrl }}
{{- .Values.config.publicUrl | trimSuffix "/" }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- $scheme := "http" }}
{{- range .Values.ingress.tls }}
{{- if has $host (default list .hosts) }}{{ $scheme = "https" }}{{ end }}
{{- end }}
{{- printf "%s://%s" $scheme $host }}
{{- end }}
{{- end }}

{{/*
STREAM_MAX_BYTES: stream.maxBytes; when empty, in embedded mode with a volume of the
chart's own, 80% of persistence.size minus storeReserve (64MiB, the room the gateway
keeps for its state): with the stream discarding its oldest events at that size, the
volume never fills. Sizes in Mi, Gi or Ti only; else nothing is derived.
*/}}
{{- define "pipedrive-gateway.streamMaxBytes" -}}
{{- $v := .Values }}
{{- if include "pipedrive-gateway.isSet" $v.stream.maxBytes }}
{{- $v.stream.maxBytes }}
{{- else if and (eq $v.nats.mode "embedded") $v.persistence.enabled (not $v.persistence.existingClaim) }}
{{- $size := toString $v.persistence.size }}
{{- if regexMatch "^[0-9]+(Mi|Gi|Ti)$" $size }}
{{- $mib := regexReplaceAll "[^0-9]" $size "" | atoi }}
{{- if hasSuffix "Gi" $size }}{{ $mib = mul $mib 1024 }}{{ end }}
{{- if hasSuffix "Ti" $size }}{{ $mib = mul $mib 1048576 }}{{ end }}
{{- $cap := min (sub (div (mul $mib 8) 10) 64) 1048576 }}
{{- if ge $cap 1 }}{{ printf "%dMiB" $cap }}{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{/* config.shutdownDelay in seconds ("10s", "1m"). */}}
{{- define "pipedrive-gateway.shutdownDelaySeconds" -}}
{{- $d := toString (default "" .Values.config.shutdownDelay) }}
{{- if hasSuffix "m" $d }}{{ mul (trimSuffix "m" $d | atoi) 60 }}
{{- else }}{{ trimSuffix "s" $d | atoi }}
{{- end }}
{{- end }}

{{/* terminationGracePeriodSeconds: the value, else the shutdown delay + 30 s. */}}
{{- define "pipedrive-gateway.terminationGrace" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add (include "pipedrive-gateway.shutdownDelaySeconds" . | atoi) 30 }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
The ports of a comma-separated list of URLs (dict "urls" "a,b" "default" "4222"), as a
JSON list: a URL's own port, else 443 for https://, else default.
*/}}
{{- define "pipedrive-gateway.urlPorts" -}}
{{- $ports := list }}
{{- range $u := splitList "," (toString .urls) }}
{{- $u = trim $u }}
{{- if $u }}
{{- $host := regexReplaceAll "^[A-Za-z][A-Za-z0-9+.-]*://" $u "" }}
{{- $host = regexReplaceAll "^[^@/]*@" $host "" }}
{{- $host = regexReplaceAll "[/?#].*$" $host "" }}
{{- $port := regexFind ":[0-9]+$" $host | trimPrefix ":" }}
{{- if not $port }}
{{- $port = ternary "443" (toString $.default) (hasPrefix "https://" (lower $u)) }}
{{- end }}
{{- $ports = append $ports $port }}
{{- end }}
{{- end }}
{{- toJson (uniq $ports) }}
{{- end }}

{{/* Settings ---------------------------------------------------------------- */}}

{{/*
Non-secret settings as "NAME: value" lines for the ConfigMap. Empty values are left
out so the binary's defaults apply.
*/}}
{{- define "pipedrive-gateway.configData" -}}
{{- $v := .Values }}
{{- $embedded := include "pipedrive-gateway.embedded" . }}
{{- $env := dict
  "HTTP_ADDR" $v.config.httpAddr
  "OPS_ADDR" $v.config.opsAddr
  "PUBLIC_URL" (include "pipedrive-gateway.publicUrl" .)
  "DATA_DIR" $v.config.dataDir
  "MAX_BODY_BYTES" $v.config.maxBodyBytes
  "PUBLISH_TIMEOUT" $v.config.publishTimeout
  "NATS_URL" (ternary "" $v.nats.url (eq $embedded "true"))
  "EMBEDDED_NATS_LISTEN" (ternary $v.nats.embedded.listen "" (eq $embedded "true"))
  "SUBJECT_PREFIX" $v.stream.subjectPrefix
  "STREAM_NAME" $v.stream.name
  "STREAM_MAX_AGE" $v.stream.maxAge
  "STREAM_REPLICAS" $v.stream.replicas
  "DEDUPE_WINDOW" $v.stream.dedupeWindow
  "STREAM_MAX_BYTES" (include "pipedrive-gateway.streamMaxBytes" .)
  "STREAM_MANAGE" $v.stream.manage
  "SHUTDOWN_DELAY" $v.config.shutdownDelay
  "OAUTH_INSTALL" $v.pipedrive.oauthInstall
  "RECONCILE_CONCURRENCY" $v.pipedrive.reconcileConcurrency
  "BACKFILL" $v.backfill.enabled
  "BACKFILL_MAX_TOKENS" $v.backfill.maxTokens
  "PIPEDRIVE_CLIENT_ID" $v.pipedrive.clientId
  "PIPEDRIVE_API_URL" $v.pipedrive.apiUrl
  "PIPEDRIVE_OAUTH_URL" $v.pipedrive.oauthUrl
  "RESYNC_INTERVAL" $v.pipedrive.resyncInterval
  "WEBHOOK_NAME" $v.pipedrive.webhookName
  "WEBHOOK_USER" $v.pipedrive.webhookUser
  "LOG_LEVEL" $v.log.level
  "LOG_FORMAT" $v.log.format
  "OTEL_SERVICE_NAME" $v.otel.serviceName
  "OTEL_EXPORTER_OTLP_ENDPOINT" $v.otel.exporterOtlpEndpoint
  "OTEL_EXPORTER_OTLP_PROTOCOL" $v.otel.exporterOtlpProtocol
  "OTEL_TRACES_SAMPLER" $v.otel.tracesSampler
  "OTEL_TRACES_SAMPLER_ARG" $v.otel.tracesSamplerArg
  "OTEL_RESOURCE_ATTRIBUTES" $v.otel.resourceAttributes
}}
{{- range $k, $val := $v.otel.env }}
{{- if not (hasPrefix "OTEL_" $k) }}
{{- fail (printf "otel.env.%s: only OTEL_* variables belong here (use extraEnv for others)" $k) }}
{{- end }}
{{- $_ := set $env $k $val }}
{{- end }}
{{- range $k := keys $env | sortAlpha }}
{{- $val := get $env $k }}
{{- if and (not (kindIs "invalid" $val)) (ne (toString $val) "") }}
{{ $k }}: {{ toString $val | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The env secrets: [env name, value in values, key name in the Secret, "state" for the
keys that live in the state-key Secret].
*/}}
{{- define "pipedrive-gateway.secretSpecs" -}}
{{- $s := .Values.secrets }}
{{- $specs := list
  (list "ADMIN_TOKEN" $s.adminToken $s.keys.adminToken "")
  (list "STATE_KEY" $s.stateKey $s.keys.stateKey "state")
  (list "STATE_KEY_PREVIOUS" $s.stateKeyPrevious $s.keys.stateKeyPrevious "state")
  (list "PIPEDRIVE_API_TOKENS" $s.pipedriveApiTokens $s.keys.pipedriveApiTokens "")
  (list "PIPEDRIVE_CLIENT_SECRET" $s.pipedriveClientSecret $s.keys.pipedriveClientSecret "")
  (list "WEBHOOK_PASSWORD" $s.webhookPassword $s.keys.webhookPassword "")
}}
{{- toJson $specs }}
{{- end }}

{{/* Data of the state-key Secret as "key: base64" lines. */}}
{{- define "pipedrive-gateway.stateSecretData" -}}
{{- range $spec := include "pipedrive-gateway.secretSpecs" . | fromJsonArray }}
{{- if and (index $spec 1) (index $spec 2) (eq (index $spec 3) "state") }}
{{ index $spec 2 }}: {{ index $spec 1 | b64enc | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Data of the chart's Secret as "key: base64" lines. */}}
{{- define "pipedrive-gateway.secretData" -}}
{{- range $spec := include "pipedrive-gateway.secretSpecs" . | fromJsonArray }}
{{- $value := index $spec 1 }}
{{- $key := index $spec 2 }}
{{- if and $value $key (ne (index $spec 3) "state") }}
{{ $key }}: {{ $value | b64enc | quote }}
{{- end }}
{{- end }}
{{- with .Values.nats.creds }}
{{- if .content }}
{{ .key }}: {{ .content | b64enc | quote }}
{{- end }}
{{- end }}
{{- with .Values.nats.nkeySeed }}
{{- if .content }}
{{ .key }}: {{ .content | b64enc | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Container env: secrets via secretKeyRef, NATS files as paths, then extraEnv. */}}
{{- define "pipedrive-gateway.env" -}}
{{- $secretName := include "pipedrive-gateway.secretName" . }}
{{- $stateSecretName := include "pipedrive-gateway.stateSecretName" . }}
{{- $existing := .Values.secrets.existingSecret }}
{{- range $spec := include "pipedrive-gateway.secretSpecs" . | fromJsonArray }}
{{- $name := index $spec 0 }}
{{- $value := index $spec 1 }}
{{- $key := index $spec 2 }}
{{- if and $key (or $existing $value) }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ ternary $stateSecretName $secretName (eq (index $spec 3) "state") }}
      key: {{ $key }}
      {{- if $existing }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}
{{- if or .Values.nats.creds.existingSecret .Values.nats.creds.content }}
- name: NATS_CREDS
  value: {{ printf "/etc/pipedrive-gateway/nats-creds/%s" .Values.nats.creds.key | quote }}
{{- end }}
{{- if or .Values.nats.nkeySeed.existingSecret .Values.nats.nkeySeed.content }}
- name: NATS_NKEY_SEED
  value: {{ printf "/etc/pipedrive-gateway/nats-nkey/%s" .Values.nats.nkeySeed.key | quote }}
{{- end }}
{{- with .Values.nats.tls }}
{{- if .existingSecret }}
{{- if .caKey }}
- name: NATS_TLS_CA
  value: {{ printf "/etc/pipedrive-gateway/nats-tls/%s" .caKey | quote }}
{{- end }}
{{- if .certKey }}
- name: NATS_TLS_CERT
  value: {{ printf "/etc/pipedrive-gateway/nats-tls/%s" .certKey | quote }}
- name: NATS_TLS_KEY
  value: {{ printf "/etc/pipedrive-gateway/nats-tls/%s" .keyKey | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Validation: every combination the gateway cannot run with fails here, clearly. */}}
{{- define "pipedrive-gateway.validate" -}}
{{- $v := .Values }}
{{- if not (has $v.nats.mode (list "embedded" "external")) }}
{{- fail (printf "nats.mode must be \"embedded\" or \"external\", got %q" (toString $v.nats.mode)) }}
{{- end }}
{{- if eq $v.nats.mode "embedded" }}
{{- if gt (int $v.replicaCount) 1 }}
{{- fail (printf "nats.mode=embedded runs exactly one replica (the JetStream store lives on that pod's volume), but replicaCount=%v: set replicaCount=1, or use nats.mode=external with nats.url to run several" $v.replicaCount) }}
{{- end }}
{{- if $v.autoscaling.enabled }}
{{- fail "nats.mode=embedded runs exactly one replica: autoscaling.enabled must be false (use nats.mode=external with nats.url to scale)" }}
{{- end }}
{{- if $v.podDisruptionBudget.enabled }}
{{- fail "nats.mode=embedded runs exactly one replica, which a PodDisruptionBudget would make undrainable: podDisruptionBudget.enabled must be false" }}
{{- end }}
{{- if $v.nats.url }}
{{- fail "nats.url is set but nats.mode=embedded: set nats.mode=external to use that NATS server" }}
{{- end }}
{{- if or $v.nats.creds.existingSecret $v.nats.creds.content $v.nats.nkeySeed.existingSecret $v.nats.nkeySeed.content $v.nats.tls.existingSecret }}
{{- fail "nats.creds, nats.nkeySeed and nats.tls configure the connection to an external NATS: they need nats.mode=external" }}
{{- end }}
{{- if and $v.persistence.existingClaim (not $v.persistence.enabled) }}
{{- fail "persistence.existingClaim is set but persistence.enabled=false" }}
{{- end }}
{{- else }}
{{- if not $v.nats.url }}
{{- fail "nats.mode=external requires nats.url (e.g. nats://nats.nats.svc:4222); leave nats.mode=embedded to run NATS inside the gateway" }}
{{- end }}
{{- if and (not $v.secrets.existingSecret) (not $v.secrets.stateKey) }}
{{- fail "nats.mode=external requires secrets.stateKey (32 random bytes, standard base64: openssl rand -base64 32) or secrets.existingSecret holding it" }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if $v.nats.embedded.service.enabled }}
{{- fail "nats.embedded.service.enabled needs nats.mode=embedded" }}
{{- end }}
{{- if and $v.podDisruptionBudget.enabled (not $v.autoscaling.enabled) (lt (int $v.replicaCount) 2) }}
{{- fail "podDisruptionBudget.enabled with replicaCount < 2 would block node drains: run at least 2 replicas" }}
{{- end }}
{{- end }}
{{- if $v.secrets.stateKey }}
{{- if ne (len (b64dec $v.secrets.stateKey)) 32 }}
{{- fail "secrets.stateKey must be 32 bytes in standard base64 (openssl rand -base64 32)" }}
{{- end }}
{{- end }}
{{- if and $v.secrets.existingSecret (or $v.secrets.adminToken $v.secrets.stateKey $v.secrets.pipedriveApiTokens $v.secrets.pipedriveClientSecret $v.secrets.webhookPassword) }}
{{- fail "secrets.existingSecret is set: put the secret values in that Secret, not in secrets.* values (they would be ignored)" }}
{{- end }}
{{- if and $v.secrets.existingSecret (or $v.nats.creds.content $v.nats.nkeySeed.content) }}
{{- fail "secrets.existingSecret is set, so the chart makes no Secret: put the NATS file in a Secret and set nats.creds.existingSecret / nats.nkeySeed.existingSecret instead of .content" }}
{{- end }}
{{- if and $v.nats.creds.existingSecret $v.nats.creds.content }}
{{- fail "set only one of nats.creds.existingSecret and nats.creds.content" }}
{{- end }}
{{- if and $v.nats.nkeySeed.existingSecret $v.nats.nkeySeed.content }}
{{- fail "set only one of nats.nkeySeed.existingSecret and nats.nkeySeed.content" }}
{{- end }}
{{- if and (or $v.nats.creds.existingSecret $v.nats.creds.content) (or $v.nats.nkeySeed.existingSecret $v.nats.nkeySeed.content) }}
{{- fail "set only one of nats.creds and nats.nkeySeed: NATS authenticates with one of them" }}
{{- end }}
{{- if and $v.nats.tls.existingSecret (ne (empty $v.nats.tls.certKey) (empty $v.nats.tls.keyKey)) }}
{{- fail "nats.tls.certKey and nats.tls.keyKey go together (client certificate and its key)" }}
{{- end }}
{{- if and $v.nats.embedded.service.enabled (or (not $v.nats.embedded.listen) (hasPrefix "127." $v.nats.embedded.listen) (hasPrefix "localhost" $v.nats.embedded.listen)) }}
{{- fail "nats.embedded.service.enabled needs nats.embedded.listen on a pod address, e.g. \"0.0.0.0:4222\" (the default 127.0.0.1:4222 is unreachable from a Service)" }}
{{- end }}
{{- if $v.podDisruptionBudget.enabled }}
{{- $min := include "pipedrive-gateway.isSet" $v.podDisruptionBudget.minAvailable }}
{{- $max := include "pipedrive-gateway.isSet" $v.podDisruptionBudget.maxUnavailable }}
{{- if eq $min $max }}
{{- fail "podDisruptionBudget: set exactly one of minAvailable and maxUnavailable (the other \"\")" }}
{{- end }}
{{- end }}
{{- $delay := include "pipedrive-gateway.shutdownDelaySeconds" . | atoi }}
{{- if gt $delay 300 }}
{{- fail (printf "config.shutdownDelay=%s: at most 5m (the gateway refuses a longer SHUTDOWN_DELAY)" (toString $v.config.shutdownDelay)) }}
{{- end }}
{{- $grace := include "pipedrive-gateway.terminationGrace" . | atoi }}
{{- if lt $grace (add $delay 10) }}
{{- fail (printf "terminationGracePeriodSeconds=%d leaves less than 10 s after config.shutdownDelay (%ds) to finish in-flight requests and drain NATS: set at least %d, or null to derive it" $grace $delay (add $delay 10)) }}
{{- end }}
{{- $_ := include "pipedrive-gateway.httpPort" . }}
{{- $_ := include "pipedrive-gateway.opsPort" . }}
{{- end }}

{{/* Pod template, shared by the Deployment and the StatefulSet. */}}
{{- define "pipedrive-gateway.podTemplate" -}}
{{- $embedded := include "pipedrive-gateway.embedded" . -}}
metadata:
  annotations:
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- /* With existingSecret the chart cannot see the data: hash the references instead. */}}
    checksum/secret: {{ list (include (print $.Template.BasePath "/secret.yaml") .) .Values.secrets.existingSecret .Values.secrets.keys .Values.nats.creds.existingSecret .Values.nats.nkeySeed.existingSecret .Values.nats.tls | toJson | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  labels:
    {{- include "pipedrive-gateway.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "pipedrive-gateway.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ include "pipedrive-gateway.terminationGrace" . }}
  containers:
    - name: gateway
      image: {{ include "pipedrive-gateway.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      {{- with .Values.args }}
      args:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: http
          containerPort: {{ include "pipedrive-gateway.httpPort" . }}
          protocol: TCP
        - name: ops
          containerPort: {{ include "pipedrive-gateway.opsPort" . }}
          protocol: TCP
        {{- if and $embedded .Values.nats.embedded.service.enabled }}
        - name: nats
          containerPort: {{ include "pipedrive-gateway.port" (dict "name" "nats.embedded.listen" "addr" .Values.nats.embedded.listen) }}
          protocol: TCP
        {{- end }}
      envFrom:
        - configMapRef:
            name: {{ include "pipedrive-gateway.fullname" . }}
        {{- with .Values.envFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with include "pipedrive-gateway.env" . | trim }}
      env:
        {{- . | nindent 8 }}
      {{- end }}
      {{- with .Values.startupProbe }}
      startupProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      livenessProbe:
        {{- toYaml .Values.livenessProbe | nindent 8 }}
      readinessProbe:
        {{- toYaml .Values.readinessProbe | nindent 8 }}
      {{- with .Values.lifecycle }}
      lifecycle:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: data
          mountPath: {{ .Values.config.dataDir }}
        {{- if or .Values.nats.creds.existingSecret .Values.nats.creds.content }}
        - name: nats-creds
          mountPath: /etc/pipedrive-gateway/nats-creds
          readOnly: true
        {{- end }}
        {{- if or .Values.nats.nkeySeed.existingSecret .Values.nats.nkeySeed.content }}
        - name: nats-nkey
          mountPath: /etc/pipedrive-gateway/nats-nkey
          readOnly: true
        {{- end }}
        {{- if .Values.nats.tls.existingSecret }}
        - name: nats-tls
          mountPath: /etc/pipedrive-gateway/nats-tls
          readOnly: true
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ .Values.tmpSizeLimit }}
    {{- if not (and $embedded .Values.persistence.enabled) }}
    - name: data
      emptyDir: {}
    {{- else if .Values.persistence.existingClaim }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ .Values.persistence.existingClaim }}
    {{- end }}
    {{- with .Values.nats.creds }}
    {{- if or .existingSecret .content }}
    - name: nats-creds
      secret:
        secretName: {{ default (include "pipedrive-gateway.fullname" $) .existingSecret }}
        defaultMode: 0440
        items:
          - key: {{ .key }}
            path: {{ .key }}
    {{- end }}
    {{- end }}
    {{- with .Values.nats.nkeySeed }}
    {{- if or .existingSecret .content }}
    - name: nats-nkey
      secret:
        secretName: {{ default (include "pipedrive-gateway.fullname" $) .existingSecret }}
        defaultMode: 0440
        items:
          - key: {{ .key }}
            path: {{ .key }}
    {{- end }}
    {{- end }}
    {{- with .Values.nats.tls }}
    {{- if .existingSecret }}
    - name: nats-tls
      secret:
        secretName: {{ .existingSecret }}
        defaultMode: 0440
        items:
          {{- range $key := list .caKey .certKey .keyKey | compact }}
          - key: {{ $key }}
            path: {{ $key }}
          {{- end }}
    {{- end }}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- tpl (toYaml .Values.topologySpreadConstraints) . | nindent 4 }}
  {{- else if and (not $embedded) .Values.defaultTopologySpread }}
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "pipedrive-gateway.selectorLabels" . | nindent 10 }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
