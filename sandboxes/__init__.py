"""Where agent actions run: one protocol (:class:`Sandbox`), several backends."""
