"""prom_helpers.py: Debian's prometheus on 127.0.0.1 for the suites that scrape p1d
(test_publishing_docs.py, test_grafana_dashboard.py): a config of the test's, storage in its
temporary directory, instant PromQL queries."""
import json
import os
import shutil
import subprocess
import urllib.parse

from daemon_helpers import free_port, http, stop_process

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")


class Prometheus:
    """A prometheus process running the config text yml, its data and log in tmp, its web API on
    127.0.0.1 at a free port; always stop() it (in a finally)."""

    def __init__(self, tmp, yml):
        self.config = os.path.join(tmp, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write(yml)
        self.port = free_port()
        self.log = open(os.path.join(tmp, "prometheus.log"), "ab")
        self.proc = subprocess.Popen([PROMETHEUS, "--config.file=" + self.config,
                                      "--storage.tsdb.path=" + os.path.join(tmp, "prom"),
                                      "--web.listen-address=127.0.0.1:%d" % self.port],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def api(self, path, params):
        """GET /api/v1/PATH?params: Prometheus' JSON reply (also for a 4xx/5xx, which carries
        status "error" and the error), or {"status": "error", "error": why} when there is none."""
        try:
            st, _, body = http(self.port, "/api/v1/%s?%s" % (path, urllib.parse.urlencode(params)),
                               timeout=5)
            return json.loads(body)
        except (OSError, ValueError) as e:
            return {"status": "error", "error": repr(e)}

    def query(self, q):
        """The result list of the instant query q; [] on any error."""
        reply = self.api("query", {"query": q})
        return reply.get("data", {}).get("result", []) if reply.get("status") == "success" else []

    def stop(self):
        stop_process(self.proc)
        self.log.close()
