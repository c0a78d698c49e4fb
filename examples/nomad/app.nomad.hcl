# emissary in a Nomad job: it renders the app's secrets into the allocation directory that
# every task of the group shares (/alloc inside Docker tasks).
#
#   nomad job run examples/nomad/app.nomad.hcl
#
# - emissary-init is a prestart task running `emissary once`: the app starts only after its
#   secrets are on disk (or the allocation fails after --timeout).
# - emissary is a poststart sidecar running `emissary run`: it keeps the files current while
#   the app runs. A single prestart sidecar running `run` also works when the app waits for
#   its file itself.
# - The emissary template travels in a Nomad `template` block with other delimiters, so Nomad's
#   own template engine leaves the mustache {{ }} alone.
# - Vault: Nomad's `vault` block gives each emissary task a VAULT_TOKEN; VAULT_ADDR is set below.
#
# /alloc is on the client's disk, not in memory (each task's own secrets/ directory is, but no
# other task can read it): the rendered file is mode 0400; keep client disks encrypted.
# emissary cannot signal a task in another container: the app re-reads its file, or is
# restarted (e.g. `nomad alloc restart`) when it must pick up a rotated secret.

locals {
  emissary_image = "emissaryd/emissary:0.1.0"
  # One template, used by both emissary tasks.
  app_template = <<-EOT
    ---
    dest: /alloc/app-secrets/db.env
    mode: 0400
    secrets:
      user: vault:secret/app/db#username
      password: vault:secret/app/db#password
    ---
    DB_USER={{user}}
    DB_PASSWORD={{password}}
  EOT
}

job "app" {
  datacenters = ["dc1"]
  type        = "service"

  group "app" {
    count = 1

    task "emissary-init" {
      lifecycle {
        hook    = "prestart"
        sidecar = false
      }
      driver = "docker"
      config {
        image = local.emissary_image
        args  = ["once", "--timeout", "5m"]
      }
      env {
        EMISSARY_TPL_DIR = "/local/emissary"
        VAULT_ADDR       = "https://vault.service.consul:8200"
      }
      vault {}
      template {
        data            = local.app_template
        destination     = "local/emissary/app.tpl"
        left_delimiter  = "[["
        right_delimiter = "]]"
      }
      # Nomad kills the task when it goes over `memory` (MB). emissary's resident memory was
      # measured at 84–143 MB (Node plus the AWS SDK, Vault client and prom-client loaded, a few
      # templates; peaks during start-up and GC), so 192 leaves headroom instead of OOM kills.
      resources {
        cpu    = 50
        memory = 192
      }
    }

    task "emissary" {
      lifecycle {
        hook    = "poststart"
        sidecar = true
      }
      driver = "docker"
      config {
        image = local.emissary_image
        args  = ["run"]
      }
      env {
        EMISSARY_TPL_DIR     = "/local/emissary"
        EMISSARY_STATUS_ADDR = "127.0.0.1:9750"
        VAULT_ADDR           = "https://vault.service.consul:8200"
      }
      vault {}
      template {
        data            = local.app_template
        destination     = "local/emissary/app.tpl"
        left_delimiter  = "[["
        right_delimiter = "]]"
      }
      # Nomad kills the task when it goes over `memory` (MB). emissary's resident memory was
      # measured at 84–143 MB (Node plus the AWS SDK, Vault client and prom-client loaded, a few
      # templates; peaks during start-up and GC), so 192 leaves headroom instead of OOM kills.
      resources {
        cpu    = 50
        memory = 192
      }
    }

    task "app" {
      driver = "docker"
      config {
        image   = "busybox:1.37"
        command = "/bin/sh"
        # The app reads the rendered file from the shared allocation directory.
        args = ["-c", "set -a; . /alloc/app-secrets/db.env; set +a; exec httpd -f -p 8080"]
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
