---
# Rendered by `npm start` into ./out/app.conf (dest is relative to the working directory).
# Edit examples/quickstart/secrets/* and watch out/app.conf and out/reloads.log follow.
dest: out/app.conf
mode: 0600
command: ["/bin/sh", "-c", "date -u +'%Y-%m-%dT%H:%M:%SZ reloaded app' >> out/reloads.log"]
secrets:
  db: file:secrets/db.json             # relative to this template's directory
  password: file:secrets/db.json#password
  api_key: file:secrets/api_key
---
# app.conf — rendered by emissary
[database]
host = "{{db.host}}"
user = "{{db.user}}"
password = "{{password}}"

[api]
key = "{{api_key}}"
