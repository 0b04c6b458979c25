// Keeps pdp_test_support non-empty.
