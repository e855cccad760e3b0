{{/*
One Taskloom Deployment. Arguments: (dict "root" $ "component" "gateway" "spec" .Values.gateway
"natsUser" "gateway" "args" (list "serve" "gateway") "database" true).
*/}}
{{- define "taskloom.deployment" -}}
{{- $root := .root -}}
{{- $spec := .spec -}}
{{- $secret := include "taskloom.secretName" $root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "taskloom.fullname" $root }}-{{ .component }}
  labels:
    {{- include "taskloom.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not (and $spec.autoscaling $spec.autoscaling.enabled) }}
  replicas: {{ $spec.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "taskloom.selectorLabels" (dict "root" $root "component" .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "taskloom.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
        taskloom.io/nats-client: "true"
        {{- if .database }}
        taskloom.io/postgres-client: "true"
        {{- end }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        prometheus.io/scrape: "true"
        prometheus.io/port: "8000"
        prometheus.io/path: /metrics
        {{- with $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "taskloom.serviceAccountName" $root }}
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: 45
      {{- include "taskloom.podScheduling" (dict "root" $root "component" .component) | nindent 6 }}
      containers:
        - name: {{ .component }}
          image: {{ include "taskloom.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            {{- toYaml .args | nindent 12 }}
          ports:
            - name: http
              containerPort: 8000
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "taskloom.configName" $root }}
          env:
            - name: TASKLOOM_NATS_USER
              value: {{ .natsUser | quote }}
            - name: TASKLOOM_NATS_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: nats-password-{{ .natsUser }}
            {{- if .database }}
            - name: TASKLOOM_DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: database-url
            {{- end }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          livenessProbe:
            httpGet:
              path: /health
              port: http
            initialDelaySeconds: 10
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /ready
              port: http
            initialDelaySeconds: 5
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 3
          startupProbe:
            httpGet:
              path: /health
              port: http
            periodSeconds: 5
            failureThreshold: 30
          resources:
            {{- toYaml $spec.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- with .volumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir: {}
        {{- with .volumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- end -}}
