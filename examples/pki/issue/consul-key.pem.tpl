---
dest: /etc/consul.d/tls/server-key.pem
mode: 0640
owner: consul
group: consul
command: systemctl restart consul
secrets:
  tls:
    ref: vault:pki/issue/consul-server
    params:
      common_name: server.dc1.consul
      alt_names: localhost
      ip_sans: 127.0.0.1
      ttl: 72h
    renew_at: 0.67
---
{{tls.private_key}}
