---
# A path: every parameter below /demo/app/, keyed by its name relative to the path.
dest: out/app.env
secrets:
  app: ssm:/demo/app/
---
DB_USER={{app.db/user}}
DB_PASSWORD={{app.db/password}}
{{#app}}DB_PORT={{port}}{{/app}}
