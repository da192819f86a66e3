# Installation test: make install into a staging directory, then load the
# modulefile and build and run an example against the installed copy.
INSTALL_TESTS = tests/install/install.test tests/install/completion.test
TESTS += $(INSTALL_TESTS)
EXTRA_DIST += $(INSTALL_TESTS)
