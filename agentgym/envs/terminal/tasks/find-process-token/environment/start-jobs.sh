#!/bin/bash
# removes itself, then starts the background jobs
rm -f "$0"
python3 -c 'import time; time.sleep(86400)' metrics-agent --token=ztn85r3enxfbnwapxvg9 &
python3 -c 'import time; time.sleep(86400)' data-sync --interval=30 --token=mtw4aje53gjcgtbwgta5 &
wait
