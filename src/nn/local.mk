# nn: see the module's header in include/rtrain/.
