module svc-studio/svcclient

go 1.19
