"""Bounce reports mailed back to the list's VERP address: `reports` reads one message as a
mail server's pipe hands it over and says which recipients failed, how hard, and which
copy it quotes; the management command that feeds it does the database part.
"""
