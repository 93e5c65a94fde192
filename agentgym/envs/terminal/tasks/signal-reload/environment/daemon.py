"""Config daemon: reads /app/svc/config.ini at start and again on SIGHUP; publishes /app/svc/status.json."""
import hashlib
import hmac
import json
import os
import signal
import sys
import time

KEYFILE = "/app/svc/.key"
if not os.path.exists(KEYFILE):
    sys.exit("daemon: signing key missing (it is only available at the first start)")
KEY = open(KEYFILE).read().strip().encode()
os.unlink(KEYFILE)

state = {"reloads": 0, "pending": False}


def load():
    cfg = {}
    for line in open("/app/svc/config.ini"):
        line = line.strip()
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            cfg[k.strip()] = v.strip()
    return cfg


def publish(cfg):
    level = cfg.get("level", "info")
    body = f"{level}:{state['reloads']}"
    sig = hmac.new(KEY, body.encode(), hashlib.sha256).hexdigest()
    tmp = "/app/svc/status.json.tmp"
    with open(tmp, "w") as f:
        json.dump({"pid": os.getpid(), "level": level, "reloads": state["reloads"], "sig": sig}, f)
    os.replace(tmp, "/app/svc/status.json")


def on_hup(signum, frame):
    state["pending"] = True


signal.signal(signal.SIGHUP, on_hup)
with open("/app/svc/daemon.pid", "w") as f:
    f.write(f"{os.getpid()}\n")
publish(load())
while True:
    time.sleep(0.1)
    if state["pending"]:
        state["pending"] = False
        state["reloads"] += 1
        publish(load())
