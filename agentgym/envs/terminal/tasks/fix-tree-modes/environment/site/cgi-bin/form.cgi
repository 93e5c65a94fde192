content of cgi-bin/form.cgi
