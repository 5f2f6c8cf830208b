#!/usr/bin/env python3
"""test_reload_removed.py: a meter removed by a reload while its retraction cannot be sent yet.
The MQTT publisher deletes a removed meter's retained Home Assistant configs and values on its next
ticks, once connected; a later reload that restarts the publisher (any [mqtt] change) before that
must hand the pending retractions over, or nothing deletes them any more. Two ways: the broker is
down at the removal (a broker with persistence, so retained messages survive its restart), and a
second reload follows the first within the publisher's tick. With a history database p1d also
knows the meters it published in an earlier run: one removed while p1d was stopped, or whose
retraction was still owed at the last shutdown, is deleted at the next start. The same holds for
the configs under a discovery prefix and the values under a topic prefix a reload moved away from:
moved twice while the broker is down, both earlier prefixes are cleared; and for a deletion sent
to a broker that never acknowledged it (frozen, then killed).
Run with P1D=build/san/p1d too."""
import contextlib
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, free_port, need_p1d, tmpdir,  # noqa: E402
                            write_conf)
from mqtt_helpers import Broker, Mqtt, need_mosquitto, persistent_broker, retained_now  # noqa: E402

T = Checks("test_reload_removed")
need_p1d(T)
need_mosquitto(T)

TOPICS = ("homeassistant/#", "p1d/#")


def of_meter(topics, name):
    """The retained topics of meter name: p1d/NAME/... and homeassistant/.../p1d_NAME/.../config."""
    return sorted(t for t in topics if t.startswith("p1d/%s/" % name) or
                  "/p1d_%s/" % name in t)


def config(port, broker_port, names, rate, disc="homeassistant", db=None, topic="p1d"):
    text = ("[http]\nlisten = 127.0.0.1:%d\n[log]\nlevel = info\n[mqtt]\nhost = 127.0.0.1\n"
            "port = %d\nrate_power = %s\nstate_interval = 0\nreconnect_max = 1s\n"
            "discovery_prefix = %s\ntopic_prefix = %s\n" % (port, broker_port, rate, disc, topic))
    if db:
        text += "[store]\ndb = %s\n" % db
    for i, n in enumerate(names):
        text += "[source %s]\nspec = sim:%d:speedup=10\n" % (n, i + 1)
    return text


class Run:
    def __init__(self, tmp, broker_port, db=None):
        self.tmp = tmp
        self.port = free_port()
        self.bport = broker_port
        self.db = db
        self.conf = os.path.join(tmp, "p1d-%d.conf" % self.port)
        self.reloads = 0
        write_conf(self.conf, config(self.port, broker_port, ["keep", "gone"], "0", db=db))
        self.d = Daemon(["--config", self.conf], tmp)

    def restart(self, names):
        """Stops p1d, writes the configuration with names, starts p1d again."""
        self.d.stop()
        write_conf(self.conf, config(self.port, self.bport, names, "0", db=self.db))
        self.reloads = 0
        self.d = Daemon(["--config", self.conf], self.tmp)

    def announced(self, name, timeout=10):
        sub = Mqtt(self.bport, topics=("homeassistant/#",))
        try:
            return sub.wait(lambda m: m[1] == "homeassistant/sensor/p1d_%s/power_w/config" % name
                            and m[2], timeout) is not None
        finally:
            sub.close()

    def reload(self, names, rate, wait=True, disc="homeassistant", topic="p1d"):
        write_conf(self.conf, config(self.port, self.bport, names, rate, disc, db=self.db,
                                     topic=topic))
        self.d.signal(signal.SIGHUP)
        self.reloads += 1
        return not wait or self.d.wait_log(r"reloaded .*\.conf: ", 10, count=self.reloads)


def wait_gone(broker_port, name, timeout):
    end = time.time() + timeout
    while True:
        left = of_meter(retained_now(broker_port, TOPICS), name)
        if not left or time.time() > end:
            return left
        time.sleep(0.2)


@contextlib.contextmanager
def session(tmp, label, persistent=False, db=None):
    """A broker and p1d with meters keep and gone, gone announced; yields (run, [broker]) (the
    broker in a list, for a test that restarts it); stops both."""
    bport = free_port()
    broker = [persistent_broker(tmp, bport) if persistent else
              Broker(tmp, bport, name=label).start()]
    r = Run(tmp, bport, db=db)
    try:
        T.check("%s: the meter to remove is announced first" % label, r.announced("gone"),
                r.d.text()[-1500:])
        yield r, broker
    finally:
        r.d.stop()
        broker[0].stop()


def check_deleted(r, label, what):
    left = wait_gone(r.bport, "gone", 8)
    T.check("%s: %s" % (label, what), not left, "%d left, e.g. %s" % (len(left), left[:3]))
    T.check("%s: p1d runs" % label, r.d.proc.poll() is None, r.d.text()[-1500:])


def test_broker_down(tmp):
    """Removed while the broker is down, then the publisher restarted, then the broker back."""
    with session(tmp, "broker down", persistent=True) as (r, broker):
        broker[0].stop()
        r.d.wait_log(r"mqtt: connection to .* lost", 10)
        T.check("broker down: the reload removing it", r.reload(["keep"], "0"))
        T.check("broker down: a reload changing [mqtt] (the publisher restarts)",
                r.reload(["keep"], "1s"))
        time.sleep(0.5)
        broker[0] = persistent_broker(tmp, r.bport)
        T.check("broker down: p1d connects again",
                r.d.wait_log(r"mqtt: connected to", 10, count=2) is not None, r.d.text()[-1500:])
        check_deleted(r, "broker down", "the removed meter's retained configs and values are "
                      "deleted once the broker is back, although the publisher was restarted")
        T.check("broker down: the meter kept stays announced",
                retained_now(r.bport, TOPICS).get("homeassistant/sensor/p1d_keep/power_w/config"))


def test_quick_reloads(tmp):
    """Removed, then the publisher restarted by a reload within its tick (1 s)."""
    with session(tmp, "quick") as (r, _):
        r.reload(["keep"], "0", wait=False)
        time.sleep(0.05)
        r.reload(["keep"], "1s", wait=False)
        T.check("quick: both reloads done", r.d.wait_log(r"reloaded .*\.conf: ", 10, count=2)
                is not None, r.d.text()[-1500:])
        check_deleted(r, "quick", "the removed meter's retained configs and values are deleted "
                      "although the next reload restarted the publisher before its tick")


def test_prefix_moved(tmp):
    """Removed by the reload that also moves the discovery prefix: its configs under the old one
    go too (the meters kept have theirs deleted there by the new publisher already)."""
    with session(tmp, "moved") as (r, _):
        T.check("moved: the reload removing it and moving discovery to ha2/",
                r.reload(["keep"], "0", disc="ha2"))
        check_deleted(r, "moved", "the removed meter's configs under the old prefix are deleted "
                      "too")


REMOVED_LOG = r"mqtt: gone: removed from the configuration; its Home Assistant entities"


def test_removed_while_stopped(tmp):
    """Taken out of the configuration while p1d was stopped (edit, then systemctl restart)."""
    with session(tmp, "stopped", persistent=True, db=os.path.join(tmp, "stopped.db")) as (r, _):
        time.sleep(1.5)  # a delivery acknowledged, so the outbox knows the meter
        r.restart(["keep"])
        check_deleted(r, "stopped", "a meter removed while p1d was stopped is deleted from Home "
                      "Assistant at the next start (p1d published it: its outbox says so)")
        T.check("stopped: the log names it", r.d.wait_log(REMOVED_LOG, 5) is not None,
                r.d.text()[-1500:])
        T.check("stopped: the meter kept stays announced", r.announced("keep"))
        r.restart(["keep"])
        T.check("stopped: p1d starts again and publishes", r.announced("keep"), r.d.text()[-800:])
        time.sleep(1.5)
        T.check("stopped: the next start does not delete it again (forgotten once deleted)",
                r.d.wait_log(REMOVED_LOG, 0.1) is None, r.d.text()[-800:])


def test_owed_at_shutdown(tmp):
    """Removed by a reload while the broker is down, then p1d stopped before it came back."""
    with session(tmp, "owed", persistent=True, db=os.path.join(tmp, "owed.db")) as (r, broker):
        time.sleep(1.5)
        broker[0].stop()
        r.d.wait_log(r"mqtt: connection to .* lost", 10)
        T.check("owed: the reload removing it", r.reload(["keep"], "0"))
        r.d.stop()
        broker[0] = persistent_broker(tmp, r.bport)
        T.check("owed: the broker still holds its configs (nobody could delete them)",
                of_meter(retained_now(r.bport, TOPICS), "gone"))
        r.restart(["keep"])
        check_deleted(r, "owed", "the deletion owed at the last shutdown is made at the next start")


def configs_under(bport, prefix):
    return sorted(t for t, v in retained_now(bport, ("%s/#" % prefix,)).items()
                  if "/p1d_" in t and v)


def test_prefix_moved_twice(tmp):
    """The discovery prefix moved while the broker is down, then [mqtt] changed again (the
    publisher restarts twice) before the broker is back: the configs under the first prefix are
    still owed, and each later move adds one more (homeassistant/ -> ha2/ -> ha3/). The same for
    the values under the topic prefix (p1d/ -> p1e/ -> p1f/)."""
    with session(tmp, "moved twice", persistent=True) as (r, broker):
        broker[0].stop()
        r.d.wait_log(r"mqtt: connection to .* lost", 10)
        T.check("moved twice: the reload removing a meter and moving discovery to ha2/ and the "
                "values to p1e/", r.reload(["keep"], "0", disc="ha2", topic="p1e"))
        T.check("moved twice: a reload changing rate_power only",
                r.reload(["keep"], "1s", disc="ha2", topic="p1e"))
        T.check("moved twice: a reload moving discovery to ha3/ and the values to p1f/",
                r.reload(["keep"], "2s", disc="ha3", topic="p1f"))
        broker[0] = persistent_broker(tmp, r.bport)
        T.check("moved twice: p1d connects again",
                r.d.wait_log(r"mqtt: connected to", 10, count=2) is not None, r.d.text()[-1500:])
        end = time.time() + 8
        while True:
            left = configs_under(r.bport, "homeassistant") + configs_under(r.bport, "ha2")
            if not left or time.time() > end:
                break
            time.sleep(0.2)
        T.check("moved twice: no config is left under homeassistant/ or ha2/ (neither of the kept "
                "meter nor of the removed one)", not left,
                "%d left, e.g. %s" % (len(left), left[:3]))
        left = sorted(t for t, v in retained_now(r.bport, ("p1d/#", "p1e/#")).items()
                      if v and not t.endswith("/status"))
        T.check("moved twice: no value is left retained under p1d/ or p1e/", not left,
                "%d left, e.g. %s" % (len(left), left[:3]))
        check_deleted(r, "moved twice", "the removed meter's retained values and configs are "
                      "deleted")
        T.check("moved twice: the meter kept is announced under ha3/",
                retained_now(r.bport, ("ha3/#",)).get("ha3/sensor/p1d_keep/power_w/config"))


def test_unacknowledged(tmp):
    """Retracted into a connection whose broker never acknowledged it (frozen, then killed), then
    the publisher restarted: the deletion is owed until the broker acknowledges it, so the new
    publisher sends it again to the broker that comes back (with the configs it had saved)."""
    with session(tmp, "unacknowledged", persistent=True) as (r, broker):
        broker[0].stop()  # saves the retained configs
        broker[0] = persistent_broker(tmp, r.bport)
        T.check("unacknowledged: p1d connects again",
                r.d.wait_log(r"mqtt: connected to", 10, count=2) is not None, r.d.text()[-1500:])
        broker[0].proc.send_signal(signal.SIGSTOP)
        try:
            T.check("unacknowledged: the reload removing it", r.reload(["keep"], "0"))
            T.check("unacknowledged: its deletion is sent (the broker does not answer)",
                    r.d.wait_log(r"mqtt: gone: removed from the configuration", 5) is not None,
                    r.d.text()[-1500:])
            time.sleep(0.3)
            T.check("unacknowledged: a reload changing [mqtt] (the publisher restarts)",
                    r.reload(["keep"], "1s"))
        finally:
            broker[0].proc.kill()  # never saw the deletion
            broker[0].proc.wait()
            broker[0].stop()
        broker[0] = persistent_broker(tmp, r.bport)
        T.check("unacknowledged: p1d connects again",
                r.d.wait_log(r"mqtt: connected to", 10, count=3) is not None, r.d.text()[-1500:])
        check_deleted(r, "unacknowledged", "the removed meter's retained configs and values are "
                      "deleted, although the broker never acknowledged the first deletion")


with tmpdir() as tmp:
    T.run([test_broker_down, test_quick_reloads, test_prefix_moved, test_removed_while_stopped,
           test_owed_at_shutdown, test_prefix_moved_twice, test_unacknowledged], tmp)
T.done()
