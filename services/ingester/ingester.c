/* placeholder */ typedef int kiln_ingester_placeholder;
