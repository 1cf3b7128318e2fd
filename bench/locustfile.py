"""Realistic mixed load for a running LiteMesh gateway (locust; `pip install -e ".[bench]"`).

  make bench-locust                                    # starts the demo, 20 s headless, fails on any failure
  locust -f bench/locustfile.py --host http://127.0.0.1:8080 --headless -u 50 -r 10 -t 60s
  locust -f bench/locustfile.py --host http://127.0.0.1:8080 --mix origin ...

Every request comes from a mix of bench/loadmix.py (`--mix`, or LOCUST_MIX):

  demo (default)  `make run` / `litemesh demo`: the example config's routes in front of the demo
                  upstreams: /api/users, /api/users/{id}, /api/users/{id}/orders, POST /api/orders,
                  /api/orders/{id}, /healthz, and the expected 403 (/internal), 301 (/docs/v1) and 404
  origin          a catch-all route to bench/origin.py: /, /api/v1/users/{id}/orders/{order_id},
                  POST /api/v1/orders, /10k, and an expected 404

Each request counts as a success only with the status its mix expects (redirects are not
followed), so a run against the right setup reports 0 failures.
"""
import random
import sys
from pathlib import Path

from locust import FastHttpUser, between, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/loadmix.py, wherever locust runs from
from loadmix import MIXES  # noqa: E402


@events.init_command_line_parser.add_listener
def _add_options(parser):  # type: ignore[no-untyped-def]
    parser.add_argument("--mix", choices=sorted(MIXES), default="demo", env_var="LOCUST_MIX",
                        help="Request mix of bench/loadmix.py: 'demo' (make run) or 'origin' (bench/origin.py)")


class GatewayUser(FastHttpUser):
    # Small think time: each simulated user is a client that sends a request every ~10-50 ms.
    wait_time = between(0.01, 0.05)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.mix = MIXES[getattr(options, "mix", None) or "demo"]
        self.rng = random.Random()

    @task
    def request(self) -> None:
        call = self.mix.pick(self.rng)
        path, body, headers = call.render(self.rng)
        with self.client.request(call.method, path, name=call.name, data=body, headers=headers,
                                 allow_redirects=False, catch_response=True) as resp:
            if resp.status_code == call.status:
                resp.success()
            else:
                resp.failure(f"expected {call.status}, got {resp.status_code}")
