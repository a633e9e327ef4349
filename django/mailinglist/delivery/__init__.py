"""The delivery engine: how a saved message becomes one sent copy per recipient.

states    the states of a delivery row and of a message, and every allowed move
claims    a worker's claim on a batch of copies (due rows, then new rows)
fan_out   delivery rows made a slice of the list at a time, inside the claims
sending   the loop a delivery task runs: claim, send, record, carry on
smtp      one SMTP connection through a batch, with the server's verdict per copy
outcomes  what the server said, written to the delivery rows
sweep     the periodic safety net for work a lost task or a dead worker left

This package imports the models; the models import only `states` from it.
"""
