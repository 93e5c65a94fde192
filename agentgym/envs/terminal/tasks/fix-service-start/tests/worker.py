"""Worker: announces readiness, then heartbeats."""
import os
import time

with open("/app/service/run/ready", "w") as f:
    f.write(f"{os.getpid()}\n")
print("worker started", flush=True)
while True:
    time.sleep(0.5)
