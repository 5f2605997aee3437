
+process_cpu:cpu:nanoseconds:cpu:nanoseconds{}00000000000000ff €ó¹ý¼1(€­ñ€½10