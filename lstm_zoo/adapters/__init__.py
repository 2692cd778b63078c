"""The only places lstm_zoo reaches into libraries' private modules, one module per library.

Each name here has no public equivalent in the pinned versions; the module says why it is
needed, so an upgrade that moves it breaks in one place with a clear message.
"""
