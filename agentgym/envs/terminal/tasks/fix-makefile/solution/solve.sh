#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cat > /app/Makefile <<'MK'
# Build build/report.txt: one line per data/*.csv file with the sum of its "amount" column.
DATA := $(sort $(wildcard data/*.csv))
REPORT = build/report.txt

all: $(REPORT)

$(REPORT): $(DATA) summarize.awk
	mkdir -p build
	for f in $(DATA); do awk -F, -f summarize.awk $$f; done > $(REPORT)

clean:
	rm -rf build

.PHONY: all clean
MK
