void suite_handoff(void) {}
