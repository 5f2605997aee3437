
{service_name="cart"}€ó¹ý¼1€­ñ€½1