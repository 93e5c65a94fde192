content of js/app.js
