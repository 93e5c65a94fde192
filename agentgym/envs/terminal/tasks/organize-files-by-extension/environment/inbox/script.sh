script.sh :: 205269272659
