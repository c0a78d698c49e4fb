---
# A Kerberos keytab for HTTP/web.example.com: binary, written byte for byte (never re-encoded,
# never trimmed). A template whose whole body is one name, {{keytab}}, with no other text — not
# even a final newline — writes the value's bytes exactly; used anywhere else, bytes that are
# not UTF-8 text are an error naming the secret, and the last good file stays.
#
# The same keytab from other backends (replace the ref below):
#   Vault KV, stored as base64 text (vault kv put secret/krb/http keytab="$(base64 -w0 http.keytab)"):
#     ref: vault:secret/krb/http#keytab
#     decode: base64
#   AWS Secrets Manager, stored as SecretBinary (aws secretsmanager create-secret
#   --name prod/krb/http --secret-binary fileb://http.keytab):
#     ref: awssm:prod/krb/http
#     encoding: binary        # without it a SecretBinary renders as base64 text, as it always did
dest: out/http.keytab
mode: 0400
command: ["/bin/sh", "-c", "echo keytab written >> out/reloads.log"]
secrets:
  keytab:
    ref: file:../secrets/http.keytab
    encoding: binary
---
{{keytab}}