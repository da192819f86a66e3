# kernels/cpu: see the module's header in include/rtrain/.
