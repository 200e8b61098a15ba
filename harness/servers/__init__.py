"""The MLflow servers harness starts (`harness ui`, `harness server`, the private server of
`--workers`) and their basic auth (imports: errors, interrupts, tracking)."""

from harness.servers._auth import basic_auth_header
from harness.servers._hosts import free_port, host_names, is_loopback
from harness.servers._plans import ServerPlan, serve, start_background_server, tracking_server_plan, ui_plan
from harness.servers._process import Tethered, wait_healthy

__all__ = ["ServerPlan", "Tethered", "basic_auth_header", "free_port", "host_names", "is_loopback", "serve",
           "start_background_server", "tracking_server_plan", "ui_plan", "wait_healthy"]
