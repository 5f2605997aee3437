
+process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="checkout"}€ó¹ý¼1 €­ñ€½1(@0:

main