"""Worker: simulates one second and a half of work, then writes its result."""
import sys
import time

i = int(sys.argv[1])
time.sleep(1.5)
with open(f"/app/out/worker-{i}.txt", "w") as f:
    f.write(f"worker {i} result {i * i}\n")
