"""Ledger holder: keeps the ledger open and removes the file from the directory."""
import os
import time

f = open("/app/svc/ledger.csv", "rb")
os.unlink("/app/svc/ledger.csv")
while True:
    time.sleep(3600)
