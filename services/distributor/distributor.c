/* placeholder */ typedef int kiln_distributor_placeholder;
