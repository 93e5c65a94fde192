"""Service entry point: validates /app/config.json and prints a summary line."""
import json

with open("/app/config.json") as f:
    cfg = json.load(f)
srv = cfg["server"]
assert isinstance(srv["port"], int) and isinstance(cfg["debug"], bool)
print(f"OK name={cfg['name']} port={srv['port']} hosts={','.join(srv['hosts'])} debug={cfg['debug']} "
      f"retries={cfg['limits']['retries']} timeout={cfg['limits']['timeout']}")
