# tools: rtrain-results, rtrain-ckpt (programs that need no MPI launch).
