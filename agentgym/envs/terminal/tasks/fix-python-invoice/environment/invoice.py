"""Print the amount owed per customer from an invoice CSV file.

usage: python3 invoice.py FILE
FILE columns: customer,quantity,unit_price,discount_percent (header row first)
line amount = quantity * unit_price * (100 - discount_percent) / 100
output: one line per customer, sorted by customer name: "<customer>: <total with 2 decimals>"
then a last line "TOTAL: <grand total with 2 decimals>"
"""
import sys

totals = {}
lines = open(sys.argv[1]).read().splitlines()
for line in lines[2:]:
    customer, qty, price, disc = line.split(",")
    amount = int(qty) * float(price) * (100 - int(disc) // 100)
    totals[customer] = amount
for customer, total in sorted(totals.items(), key=lambda kv: kv[1]):
    print(f"{customer}: {total:.2f}")
print(f"TOTAL: {sum(totals.values())}")
