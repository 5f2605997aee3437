
{zone="eu"}podk8s.pod.name€ó¹ý¼1 €­ñ€½1