
service.name{}€ó¹ý¼1 €­ñ€½1