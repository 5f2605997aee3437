/* placeholder */ typedef int kiln_querier_placeholder;
