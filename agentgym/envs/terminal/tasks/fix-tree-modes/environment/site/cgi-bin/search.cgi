content of cgi-bin/search.cgi
