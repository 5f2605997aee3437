	
+process_cpu:cpu:nanoseconds:cpu:nanoseconds{}€ó¹ý¼1 €­ñ€½12:1