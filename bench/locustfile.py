"""Realistic mixed load for a running LiteMesh gateway (locust; optional, `pip install locust`).

  locust -f bench/locustfile.py --host http://127.0.0.1:8080 --headless -u 200 -r 50 -t 60s

Request mix (task weights):
  60%  GET  /                                         small fixed body
  20%  GET  /api/v1/users/{id}/orders/{order_id}      path parameters
  10%  POST /api/v1/orders                            JSON body
   5%  GET  /10k                                      10 KiB body
   5%  GET  /no-such-route/{n}                        404 expected (counted as success)

bench/origin.py answers all of these (`/`, `/10k`, anything under /api/, 404 elsewhere), so
`python bench/origin.py --port 9000` plus a gateway routing `/` to it is a complete setup.
Environment: LOCUST_USER_ID_MAX (default 100000) bounds the generated ids.
"""
import json
import os
import random

from locust import FastHttpUser, between, task

ID_MAX = int(os.environ.get("LOCUST_USER_ID_MAX", "100000"))


class GatewayUser(FastHttpUser):
    # Small think time: each simulated user is a client that sends a request every ~10-50 ms.
    wait_time = between(0.01, 0.05)

    @task(60)
    def get_small(self):
        self.client.get("/", name="GET / (small)")

    @task(20)
    def get_with_params(self):
        uid, oid = random.randint(1, ID_MAX), random.randint(1, ID_MAX)
        self.client.get(f"/api/v1/users/{uid}/orders/{oid}",
                        name="GET /api/v1/users/{id}/orders/{order_id}")

    @task(10)
    def post_json(self):
        order = {
            "customer_id": random.randint(1, ID_MAX),
            "items": [{"sku": f"SKU-{random.randint(1000, 9999)}",
                       "qty": random.randint(1, 5)} for _ in range(random.randint(1, 4))],
            "currency": "EUR",
            "note": "bench order",
        }
        self.client.post("/api/v1/orders", data=json.dumps(order),
                         headers={"Content-Type": "application/json"},
                         name="POST /api/v1/orders (json)")

    @task(5)
    def get_10k(self):
        self.client.get("/10k", name="GET /10k")

    @task(5)
    def get_404(self):
        with self.client.get(f"/no-such-route/{random.randint(1, ID_MAX)}",
                             name="GET /no-such-route/{n} (404)",
                             catch_response=True) as resp:
            if resp.status_code == 404:
                resp.success()
            else:
                resp.failure(f"expected 404, got {resp.status_code}")
