"""The daily report: counts kept from the events this service consumes, e-mailed to every admin."""
